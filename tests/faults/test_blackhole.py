"""A link that goes silent without closing: the client notices by ping, says so, and recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from roomz import AsyncClient, ConnectionError, ConnectionState
from roomz.server.local import LocalServer

from .helpers import TIMEOUT, SendLog, Watch, stays_true, wait_until
from .proxy import TcpProxy

PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
NOTICE_MARGIN = 1.0  # scheduling and the write loop winding down


def state_of(client: AsyncClient) -> ConnectionState:
    """The client's state now (a call, so mypy does not carry an earlier check over)."""
    return client.connection_state


@pytest.mark.timeout(30)
async def test_a_silent_link_is_noticed_by_ping_and_the_client_comes_back(
        proxy_factory: Callable[[list[int]], Any],
        make_client: Callable[..., AsyncClient]) -> None:
    """Blackholed: "disconnect" within the ping window, never CONNECTED; restored: back."""
    async with LocalServer(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT) as server:
        session = await server.sign_in("alice@example.com")
        proxy: TcpProxy = await proxy_factory([server.port])
        client = make_client(proxy.url, session)
        watch = Watch("client", client)
        await asyncio.wait_for(client.connect(), TIMEOUT)
        before = await asyncio.wait_for(client.send("before the cut"), TIMEOUT)
        assert before["status"] == "ok"
        await wait_until(lambda: watch.ids[before["message_id"]] == 1, what="its own message")

        proxy.blackhole()
        cut = time.monotonic()
        log = SendLog()
        # Sent into the silent link before anyone can know: the caller must hear it failed.
        into_the_void = asyncio.create_task(
            log.send("client", lambda: client.send("into the silence"), timeout=TIMEOUT * 2))
        await wait_until(lambda: watch.count("down") == 1,
                         PING_INTERVAL + PING_TIMEOUT + NOTICE_MARGIN + 2, "the disconnect handler")
        noticed_after = watch.times("down")[0] - cut
        assert noticed_after <= PING_INTERVAL + PING_TIMEOUT + NOTICE_MARGIN, noticed_after
        assert client.connection_state is ConnectionState.RECONNECTING
        assert client.connected is False
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(client.send("while cut"), TIMEOUT)
        # Its reconnect attempts go into the blackhole too: it must not claim to be connected.
        assert await stays_true(
            lambda: client.connection_state is ConnectionState.RECONNECTING, 1.0), \
            client.connection_state
        await asyncio.wait_for(into_the_void, TIMEOUT * 2)
        [entry] = log.sends
        assert entry.outcome in ("error", "raised"), entry
        if entry.outcome == "error":
            assert entry.code == 408, entry

        proxy.restore()
        await wait_until(lambda: client.connected, 10, "the reconnect after the link came back")
        assert state_of(client) is ConnectionState.CONNECTED
        assert len(proxy.routed) >= 2, "the client should be back on a new connection"
        after = await asyncio.wait_for(client.send("after the cut"), TIMEOUT)
        assert after["status"] == "ok", after
        await wait_until(lambda: watch.ids[after["message_id"]] == 1, what="the message after")
        assert [c for c, _ in watch.changes] == ["up", "down", "up"]
        assert not watch.duplicates()


@pytest.mark.timeout(30)
async def test_a_short_silence_within_the_ping_window_goes_unnoticed(
        proxy_factory: Callable[[list[int]], Any],
        make_client: Callable[..., AsyncClient]) -> None:
    """A hiccup shorter than the ping window: no disconnect; a message sent during it arrives."""
    async with LocalServer(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT) as server:
        session = await server.sign_in("bob@example.com")
        proxy: TcpProxy = await proxy_factory([server.port])
        sender = make_client(proxy.url, session)
        watch = Watch("sender", sender)
        await asyncio.wait_for(sender.connect(), TIMEOUT)

        proxy.blackhole()
        pending = asyncio.create_task(sender.send("through the hiccup"))
        assert await stays_true(lambda: sender.connected and not pending.done(), 0.5)
        proxy.restore()
        ack = await asyncio.wait_for(pending, TIMEOUT)
        assert ack["status"] == "ok", ack
        await wait_until(lambda: watch.ids[ack["message_id"]] == 1, what="the held message")
        assert await stays_true(lambda: sender.connected, PING_INTERVAL + PING_TIMEOUT)
        assert watch.count("down") == 0
