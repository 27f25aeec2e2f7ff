"""Each private part of python-socketio / python-engineio that roomz.internals relies on.

One test per assumption listed in the module's docstring: if an upgrade changes one, the
test that names it fails here, rather than clients getting stuck in the field.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import socketio

from roomz import internals
from tests.security.hostile_server import HostileServer, hostile_server
from tests.waiting import wait_until

TIMEOUT = 5.0
COOKIE = {"Cookie": "session_token=any"}


@pytest.fixture
def server() -> Iterator[HostileServer]:
    """A Socket.IO server that accepts anyone and sends them nothing but a greeting."""
    with hostile_server(script=[]) as hostile:
        yield hostile


def socket_client(**options: Any) -> tuple[internals.SocketClient, list[str]]:
    """A :class:`~roomz.internals.SocketClient`, and the reserved names it was sent."""
    reserved: list[str] = []
    options = {"reconnection_delay": 0.05, "randomization_factor": 0, **options}
    return internals.SocketClient(on_reserved_event=reserved.append, **options), reserved


async def connect(sio: socketio.AsyncClient, server: HostileServer) -> None:
    await asyncio.wait_for(sio.connect(server.url, headers=COOKIE, transports=["websocket"]),
                           TIMEOUT)


def test_reserved_events_are_the_client_life_cycle_names() -> None:
    """``BaseClient.reserved_events`` lists exactly the names the client keeps for itself."""
    assert set(socketio.AsyncClient.reserved_events) == {
        "connect", "connect_error", "disconnect", internals.DISCONNECT_FINAL}


async def test_upstream_still_hands_a_servers_reserved_event_to_its_handler() -> None:
    """Why :class:`SocketClient` exists: python-socketio's own client runs its ``disconnect``
    handler for a server's EVENT packet named "disconnect". The day it stops, the override
    can go."""
    sio = socketio.AsyncClient()
    heard: list[tuple[Any, ...]] = []
    sio.on("disconnect", lambda *args: heard.append(args))
    await sio._handle_eio_message('2["disconnect","io server disconnect"]')
    assert heard == [("io server disconnect",)]


async def test_handle_event_is_where_event_packets_are_dispatched() -> None:
    """``_handle_eio_message`` passes every EVENT packet to ``_handle_event(namespace, id,
    data)``, ``data[0]`` being the name: the override drops the reserved ones there and
    lets the others through."""
    assert list(inspect.signature(socketio.AsyncClient._handle_event).parameters) == [
        "self", "namespace", "id", "data"]
    sio, reserved = socket_client()
    heard: list[str] = []
    for name in (*sio.reserved_events, "message"):
        sio.on(name, lambda *args, name=name: heard.append(name))
    for name in sio.reserved_events:
        await sio._handle_eio_message(f'2["{name}","spoofed"]')
    await sio._handle_eio_message('2["message",{"content":"hi"}]')
    assert reserved == list(sio.reserved_events)
    assert heard == ["message"]


async def test_disconnect_final_comes_when_the_attempts_are_used_up(
    server: HostileServer,
) -> None:
    """``__disconnect_final`` is triggered once python-socketio stops reconnecting."""
    sio, _ = socket_client(reconnection_attempts=1)
    over = asyncio.Event()

    async def reconnecting_over() -> None:
        over.set()

    internals.on_reconnecting_over(sio, reconnecting_over)
    await connect(sio, server)
    server.stop()
    await asyncio.wait_for(over.wait(), TIMEOUT)
    assert not sio.connected


async def test_engineio_state_says_whether_the_client_will_reconnect(
    server: HostileServer,
) -> None:
    """In the ``disconnect`` handler, ``eio.state`` is still "connected" when the transport
    was lost (and python-socketio then reconnects), and not when we disconnected."""
    sio, _ = socket_client()
    seen: list[bool] = []
    sio.on("disconnect", lambda *args: seen.append(internals.will_reconnect(sio)))
    await connect(sio, server)
    server.stop()
    await wait_until(lambda: seen == [True], TIMEOUT, lambda: f"the drop; saw {seen}")
    server.start()
    await wait_until(lambda: sio.connected, TIMEOUT, "python-socketio to reconnect")
    assert server.connections == 2

    await asyncio.wait_for(internals.shut(sio), TIMEOUT)
    assert seen == [True, False]


async def stopped_as_a_reconnect_starts(
    server: HostileServer, stop: Callable[[socketio.AsyncClient], Awaitable[None]],
) -> BaseException | None:
    """What ``stop(sio)`` raised, run in a task the ``disconnect`` handler starts as the
    server goes away (the reconnect task is created right after that handler)."""
    sio, _ = socket_client(reconnection_delay=0.5)
    stopping: list[asyncio.Future[None]] = []
    sio.on("disconnect", lambda *args: stopping.append(asyncio.ensure_future(stop(sio))))
    await connect(sio, server)
    server.stop()
    try:
        await wait_until(lambda: bool(stopping), TIMEOUT, "the drop")
        await asyncio.wait_for(asyncio.wait(stopping), TIMEOUT)
        return stopping[0].exception()
    finally:
        await asyncio.wait_for(internals.shut(sio), TIMEOUT)
        server.start()


async def test_shutdown_as_a_reconnect_starts_raises_and_shut_copes(
    server: HostileServer,
) -> None:
    """Called as the first reconnect task starts, python-socketio's ``shutdown()`` raises
    AttributeError (no abort event yet): ``shut`` tries again a turn later and stops the
    reconnecting. The day upstream stops raising, the workaround can go."""
    raised = await stopped_as_a_reconnect_starts(server, lambda sio: sio.shutdown())
    assert isinstance(raised, AttributeError), raised
    assert await stopped_as_a_reconnect_starts(server, internals.shut) is None
