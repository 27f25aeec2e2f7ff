"""The client's side of the history extension: resuming by itself, ``history()``, ``cursor``."""

from __future__ import annotations

import asyncio
import logging

import pytest

from roomz import AsyncClient, ConnectionState, SyncClient
from roomz.server.local import LocalServer
from roomz.server.testing import ThreadedServer
from tests.events import Events
from tests.faults.proxy import TcpProxy

from .conftest import SignedIn
from .helpers import TIMEOUT, wait_until

FAST = {"reconnect_delay": 0.1, "max_reconnect_attempts": 50, "connection_timeout": 2.0}
ALICE = "alice@example.com"


async def sent(client: AsyncClient, *texts: str) -> list[str]:
    """Send each text; the ids of their acknowledgements."""
    ids = []
    for text in texts:
        ack = await asyncio.wait_for(client.send(text), TIMEOUT)
        assert ack["status"] == "ok", ack
        ids.append(ack["message_id"])
    return ids


async def test_after_a_cut_link_handlers_get_what_was_missed_once_in_order_flagged(
        server: LocalServer, signed_in: SignedIn) -> None:
    """The link breaks and stays down while messages are sent; back, the handlers see them
    (``"replayed": True``) before the next live one, and nothing twice."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        sender = await signed_in(server, ALICE)
        away = await signed_in(server, ALICE, url=proxy.url, **FAST)
        events = Events(away)
        (before,) = await sent(sender, "before")
        await events.wait_for("message", lambda d: d["id"] == before)

        proxy.blackhole()  # attempts hang until the link is back
        proxy.cut()
        await wait_until(lambda: away.connection_state is ConnectionState.RECONNECTING)
        missed = await sent(sender, *(f"missed {i}" for i in range(5)))
        proxy.restore()
        back = await events.wait_for("authenticated", lambda d: "missed" in d["history"],
                                     timeout=10)
        (live,) = await sent(sender, "live")
        await events.wait_for("message", lambda d: d["id"] == live)
    finally:
        await proxy.close()

    messages = events.named("message")
    assert [m["id"] for m in messages] == [before, *missed, live]
    assert [m.get("replayed", False) for m in messages] == [False] + [True] * 5 + [False]
    assert back["history"]["missed"] == 5 and back["history"]["complete"] is True
    assert away.cursor == messages[-1]["cursor"]


async def test_history_returns_the_last_messages(server: LocalServer,
                                                 signed_in: SignedIn) -> None:
    alice = await signed_in(server, ALICE)
    ids = await sent(alice, "a", "b", "c")
    last_two = await asyncio.wait_for(alice.history(2), TIMEOUT)
    assert [m["id"] for m in last_two] == ids[1:]
    assert all(m["replayed"] is True for m in last_two)
    with pytest.raises(ValueError, match="limit"):
        await alice.history(0)


async def test_a_cursor_kept_elsewhere_resumes_a_new_client(
        server: LocalServer, signed_in: SignedIn) -> None:
    """A program that kept ``cursor`` (a bot, in its store) gets what came after it."""
    alice = await signed_in(server, ALICE)
    await sent(alice, "seen")
    await wait_until(lambda: alice.cursor is not None)
    kept = alice.cursor
    missed = await sent(alice, "missed 1", "missed 2")

    link = await server.request_link(ALICE)
    later = AsyncClient(server.url)
    later.cursor = kept
    events = Events(later)
    try:
        await asyncio.wait_for(later.connect(link.token), TIMEOUT)
        await wait_until(lambda: len(events.named("message")) == 2)
    finally:
        await asyncio.wait_for(later.disconnect(), TIMEOUT)
    assert [m["id"] for m in events.named("message")] == missed


def test_sync_client_history() -> None:
    with ThreadedServer() as server, \
            SyncClient(server.url, server.request_link(ALICE).token) as client:
        ack = client.send("hello")
        assert [m["id"] for m in client.history(1)] == [ack["message_id"]]


async def test_a_server_without_history_is_said_once(
        signed_in: SignedIn, caplog: pytest.LogCaptureFixture) -> None:
    """History off: no replay, ``history()`` is empty, and one log line says so."""
    caplog.set_level(logging.INFO, "roomz.client")
    async with LocalServer(history=False) as server:
        alice = await signed_in(server, ALICE, **FAST)
        await sent(alice, "hi")
        assert await alice.history(10) == []
        await server.stop()
        await wait_until(lambda: alice.connection_state is ConnectionState.RECONNECTING)
        await server.start()
        await wait_until(lambda: alice.connected, 10)
    said = [r for r in caplog.records if "keeps no message history" in r.getMessage()]
    assert len(said) == 1, said
