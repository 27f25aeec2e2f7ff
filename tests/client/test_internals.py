"""Each private part of python-socketio that roomz.internals relies on.

One test per assumption listed in the module's docstring: if an upgrade changes one, the
test that names it fails here, rather than clients getting stuck in the field.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import socketio

from roomz import internals
from roomz.server.local import LocalServer
from tests.server.proc import free_port


def socket_client(**options: Any) -> tuple[internals.SocketClient, list[str]]:
    """A :class:`~roomz.internals.SocketClient` as the client makes it, and the reserved names
    it was sent."""
    reserved: list[str] = []
    options = {"reconnection": False, **options}
    return internals.SocketClient(on_reserved_event=reserved.append, **options), reserved


def test_reserved_events_are_the_client_life_cycle_names() -> None:
    """``BaseClient.reserved_events`` lists exactly the names the client keeps for itself."""
    assert set(socketio.AsyncClient.reserved_events) == {
        "connect", "connect_error", "disconnect", "__disconnect_final"}


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


async def test_failed_namespaces_tells_a_refusal_from_an_unreachable_server(
        server: LocalServer) -> None:
    """``connect`` raises the same ``ConnectionError`` (and calls the documented
    ``connect_error`` handler) whether the server refused the session or was never
    reached; ``failed_namespaces``, read by :meth:`SocketClient.refused`, tells them apart."""
    for url, refused in ((server.url, True), (f"http://127.0.0.1:{free_port()}", False)):
        sio, _ = socket_client()
        errors: list[Any] = []
        sio.on("connect_error", lambda *args, errors=errors: errors.append(args))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(url, transports=["websocket"], wait_timeout=5)
        assert errors and sio.refused() is refused, url
        await sio.disconnect()
