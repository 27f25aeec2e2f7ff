"""``send(key=...)``: said once on a server that offers ``send_once``, the key left out on
one that does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomz import SyncClient
from roomz.server.local import LocalServer
from roomz.server.testing import ThreadedServer
from tests.events import Events

from .conftest import SignedIn
from .helpers import TIMEOUT, assert_send_ack


def recording_payloads(server: LocalServer) -> list[Any]:
    """Every ``message`` payload ``server`` receives from now on, as it arrived."""
    payloads: list[Any] = []
    chat = server.server.chat

    async def recording(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        payloads.append(data)
        return await chat.message(sid, data, *extra)

    server.server.sio.on("message", recording)  # in place of the chat's own handler
    return payloads


async def test_a_message_sent_again_with_its_key_is_said_once(
        server: LocalServer, signed_in: SignedIn) -> None:
    """On our server (history on) the key goes out; the second send is the duplicate."""
    client = await signed_in(server, "alice@example.com")
    recorder = Events(client)
    assert client.supports("send_once")
    first = await asyncio.wait_for(client.send("once", key="k-1"), TIMEOUT)
    again = await asyncio.wait_for(client.send("once", key="k-1"), TIMEOUT)
    assert_send_ack(first)
    assert again["duplicate"] is True and again["message_id"] == first["message_id"]
    marker = await asyncio.wait_for(client.send("marker"), TIMEOUT)
    await recorder.wait_for("message", lambda d: d["id"] == marker["message_id"])
    assert [m["content"] for m in recorder.named("message")] == ["once", "marker"]


async def test_without_the_feature_the_key_is_not_sent(signed_in: SignedIn) -> None:
    """A server that does not offer send_once (history off) never sees the key, and the
    message goes as ``send(content)`` would send it."""
    async with LocalServer(history=False) as server:
        payloads = recording_payloads(server)
        client = await signed_in(server, "alice@example.com")
        assert not client.supports("send_once")
        ack = await asyncio.wait_for(client.send("hello", key="k-1"), TIMEOUT)
        assert_send_ack(ack)
        await asyncio.wait_for(client.disconnect(), TIMEOUT)
    assert payloads == [{"content": "hello"}]


async def test_with_the_feature_the_key_is_sent(server: LocalServer,
                                               signed_in: SignedIn) -> None:
    """The counterpart of the test above: the recording sees a key when one is sent."""
    payloads = recording_payloads(server)
    client = await signed_in(server, "alice@example.com")
    await asyncio.wait_for(client.send("hello", key="k-1"), TIMEOUT)
    await asyncio.wait_for(client.send("plain"), TIMEOUT)
    assert payloads == [{"content": "hello", "key": "k-1"}, {"content": "plain"}]


@pytest.mark.parametrize("key", ["", "x" * 101, 42])
async def test_a_bad_key_is_refused_before_anything_is_sent(
        server: LocalServer, signed_in: SignedIn, key: Any) -> None:
    """Not a string of 1-100 characters: ValueError naming the key."""
    client = await signed_in(server, "alice@example.com")
    with pytest.raises(ValueError, match="key"):
        await asyncio.wait_for(client.send("hello", key=key), TIMEOUT)


def test_the_sync_client_says_a_keyed_message_once() -> None:
    """SyncClient.send takes ``key=`` as AsyncClient.send does."""
    with ThreadedServer() as server:
        token = server.request_link("alice@example.com").token
        with SyncClient(server.url, token, connection_timeout=5.0) as client:
            assert client.supports("send_once")
            first = client.send("once", key="k-1")
            again = client.send("once", key="k-1")
    assert again["duplicate"] is True and again["message_id"] == first["message_id"]
