"""Events reaching handlers registered with ``on()``: their data, ``off()``, failing handlers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from roomz import ConnectionState
from roomz.server.local import LocalServer
from tests.events import Events, user_of

from .conftest import SignedIn
from .helpers import TIMEOUT, assert_send_ack, is_iso8601, is_uuid, wait_until


async def test_message_event_data(server: LocalServer, signed_in: SignedIn) -> None:
    """A message reaches every connection of the user with id, user, content and timestamp."""
    alice = await signed_in(server, "alice@example.com")
    other = await signed_in(server, "alice@example.com")
    mine, theirs = Events(alice), Events(other)
    ack = await asyncio.wait_for(alice.send("<b>hi</b> & bye"), TIMEOUT)
    for recorder in (mine, theirs):
        data = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert set(data) >= {"id", "user", "content", "timestamp"}
        assert is_uuid(data["id"]) and is_iso8601(data["timestamp"])
        assert data["user"] == user_of("alice@example.com")
        assert data["content"] == "&lt;b&gt;hi&lt;/b&gt; &amp; bye"  # as the server sends it


async def test_on_message_example_from_the_api_reference(
    server: LocalServer, signed_in: SignedIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API.md on() example prints ``email: content`` for each message."""
    client = await signed_in(server, "alice@example.com")
    printed: list[str] = []

    def on_message(data: dict[str, Any]) -> None:
        print(f"{data['user']['email']}: {data['content']}")
        printed.append(data["id"])

    client.on("message", on_message)
    ack = await asyncio.wait_for(client.send("Hello, world!"), TIMEOUT)
    await wait_until(lambda: printed == [ack["message_id"]], what="the example's print")
    assert capsys.readouterr().out == "alice@example.com: Hello, world!\n"


async def test_user_joined_and_user_left(server: LocalServer, signed_in: SignedIn) -> None:
    """Another connection of the user joining and leaving is reported with connection counts."""
    alice = await signed_in(server, "alice@example.com")
    recorder = Events(alice)
    other = await signed_in(server, "alice@example.com")
    joined = await recorder.wait_for("user_joined")
    assert joined["user"] == user_of("alice@example.com")
    assert joined["total_connections"] == 2
    assert is_iso8601(joined["timestamp"])
    await asyncio.wait_for(other.set_display_name("Phone"), TIMEOUT)
    await asyncio.wait_for(other.disconnect(), TIMEOUT)
    left = await recorder.wait_for("user_left")
    assert left["user"] == user_of("alice@example.com", "Phone")
    assert left["remaining_connections"] == 1
    assert is_iso8601(left["timestamp"])
    assert alice.connected


async def test_display_name_changed_event(server: LocalServer, signed_in: SignedIn) -> None:
    """A rename on one connection reaches the others with display_name at top level and in user."""
    alice = await signed_in(server, "alice@example.com")
    other = await signed_in(server, "alice@example.com")
    theirs, mine = Events(other), Events(alice)
    await asyncio.wait_for(alice.set_display_name("Alice"), TIMEOUT)
    changed = await theirs.wait_for("display_name_changed")
    assert changed["display_name"] == "Alice"
    assert changed["user"]["display_name"] == "Alice"
    assert changed["user"]["id"] == "user:alice@example.com"
    assert changed["user"]["email"] == "alice@example.com"
    assert is_iso8601(changed["timestamp"])
    await asyncio.wait_for(alice.set_display_name(None), TIMEOUT)
    cleared = await theirs.wait_for("display_name_changed", lambda d: d["display_name"] is None)
    assert cleared["user"]["display_name"] is None
    # The connection that renamed itself is not told about its own rename.
    ack = await asyncio.wait_for(alice.send("barrier"), TIMEOUT)
    await mine.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert mine.named("display_name_changed") == []


async def test_sync_and_async_handlers_both_run(server: LocalServer, signed_in: SignedIn) -> None:
    """A plain function and a coroutine function registered for message both get each message."""
    client = await signed_in(server, "alice@example.com")
    plain: list[str] = []
    awaited: list[str] = []

    def sync_handler(data: dict[str, Any]) -> None:
        plain.append(data["id"])

    async def async_handler(data: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        awaited.append(data["id"])

    client.on("message", sync_handler)
    client.on("message", async_handler)
    ack = await asyncio.wait_for(client.send("both"), TIMEOUT)
    await wait_until(lambda: plain == awaited == [ack["message_id"]], what="both handlers")


async def test_off_removes_one_handler(server: LocalServer, signed_in: SignedIn) -> None:
    """off(event, handler) stops that handler only; the others keep receiving."""
    client = await signed_in(server, "alice@example.com")
    removed: list[str] = []
    kept: list[str] = []

    def removed_handler(data: dict[str, Any]) -> None:
        removed.append(data["id"])

    def kept_handler(data: dict[str, Any]) -> None:
        kept.append(data["id"])

    client.on("message", removed_handler)
    client.on("message", kept_handler)
    first = await asyncio.wait_for(client.send("one"), TIMEOUT)
    await wait_until(lambda: first["message_id"] in kept and first["message_id"] in removed)
    client.off("message", removed_handler)
    second = await asyncio.wait_for(client.send("two"), TIMEOUT)
    await wait_until(lambda: second["message_id"] in kept, what="the kept handler")
    assert removed == [first["message_id"]]


async def test_off_without_handler_removes_all_handlers_of_the_event(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """off(event) stops every handler of that event and no other event's."""
    client = await signed_in(server, "alice@example.com")
    other = await signed_in(server, "alice@example.com")
    messages: list[str] = []
    renames: list[Any] = []
    client.on("message", lambda data: messages.append("first"))
    client.on("message", lambda data: messages.append("second"))
    client.on("display_name_changed", lambda data: renames.append(data["display_name"]))
    client.off("message")
    later: list[str] = []
    await asyncio.wait_for(other.set_display_name("Tab"), TIMEOUT)
    await wait_until(lambda: renames == ["Tab"], what="the rename")
    client.on("message", lambda data: later.append(data["id"]))
    ack = await asyncio.wait_for(client.send("nobody old hears this"), TIMEOUT)
    await wait_until(lambda: later == [ack["message_id"]], what="the new handler")
    assert messages == []


async def test_off_of_an_unregistered_handler_is_harmless(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """off() for a handler or event with nothing registered does nothing."""
    client = await signed_in(server, "alice@example.com")
    client.off("user_left", lambda data: None)
    client.off("error")
    assert client.connected


@pytest.mark.parametrize("failing", ["sync", "async"])
async def test_failing_handler_is_logged_and_others_still_run(
    server: LocalServer, signed_in: SignedIn, caplog: pytest.LogCaptureFixture, failing: str
) -> None:
    """A handler that raises is logged; later handlers still run and the connection stays up."""
    client = await signed_in(server, "alice@example.com")
    after: list[str] = []

    def sync_boom(data: dict[str, Any]) -> None:
        raise RuntimeError("handler exploded")

    async def async_boom(data: dict[str, Any]) -> None:
        raise RuntimeError("handler exploded")

    client.on("message", sync_boom if failing == "sync" else async_boom)
    client.on("message", lambda data: after.append(data["id"]))
    with caplog.at_level(logging.ERROR):
        first = await asyncio.wait_for(client.send("one"), TIMEOUT)
        await wait_until(lambda: after == [first["message_id"]], what="the second handler")
    assert any(r.exc_info and "handler exploded" in str(r.exc_info[1]) for r in caplog.records)
    assert client.connected
    second = await asyncio.wait_for(client.send("two"), TIMEOUT)
    assert_send_ack(second)
    await wait_until(lambda: after == [first["message_id"], second["message_id"]])


async def test_error_event_when_reconnect_attempts_run_out(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """The server gone for good: disconnect, RECONNECTING, then error 503 and DISCONNECTED."""
    client = await signed_in(server, "alice@example.com", reconnect_delay=0.1,
                             max_reconnect_attempts=2)
    recorder = Events(client)
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    await recorder.wait_for("disconnect")
    error = await recorder.wait_for("error", timeout=10)
    assert set(error) == {"error", "code"}
    assert error["code"] == 503 and isinstance(error["error"], str) and error["error"]
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert client.connected is False
    assert recorder.named("disconnect") == [{}]
    assert recorder.count("error") == 1


async def test_no_reconnect_when_reconnect_is_off(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """With reconnect=False a lost connection: a disconnect event, then DISCONNECTED."""
    client = await signed_in(server, "alice@example.com", reconnect=False)
    recorder = Events(client)
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    await recorder.wait_for("disconnect")
    await wait_until(lambda: client.connection_state is ConnectionState.DISCONNECTED)
    assert client.connected is False
