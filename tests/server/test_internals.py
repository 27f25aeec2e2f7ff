"""Each private part of python-socketio / python-engineio that roomz.server.internals relies on.

One test per assumption listed in the module's docstring: if an upgrade changes one, the
test that names it fails here, rather than a server hanging or leaking in production.
"""

from __future__ import annotations

import asyncio
import inspect

import socketio
from aiohttp import web
from engineio import async_socket
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet

from roomz.server import internals
from roomz.server.internals import CheckedWebSocket, OutgoingQueue, SocketServer
from roomz.server.testing import LocalServer
from tests.security.hostile_clients import RawSocket, http_session
from tests.waiting import wait_until

from .helpers import signed_in

ALICE = "alice@example.com"


def socket_server() -> SocketServer:
    return SocketServer(connect_timeout=5, max_connections=10, max_queued_events=10,
                        async_mode="aiohttp", async_handlers=False)


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


async def only_socket(server: LocalServer) -> async_socket.AsyncSocket:
    """The one Engine.IO socket of ``server``, from engine.io's private ``sockets``."""
    sockets = server.server.sio.eio.sockets
    await wait_until(lambda: len(sockets) == 1, 5, "one Engine.IO socket")
    (socket,) = sockets.values()
    return socket


async def test_engineio_calls_the_overridden_handle_eio_hooks() -> None:
    """``_handle_eio_connect/_message/_disconnect`` are what engine.io calls (and their
    signatures): our overrides are the ones registered."""
    sio = socket_server()
    for event, name in (("connect", "_handle_eio_connect"), ("message", "_handle_eio_message"),
                        ("disconnect", "_handle_eio_disconnect")):
        assert sio.eio.handlers[event].__func__ is getattr(SocketServer, name)
    base = socketio.AsyncServer
    assert parameters(base._handle_eio_connect)[1:] == ["eio_sid", "environ"]
    assert parameters(base._handle_eio_message)[1:] == ["eio_sid", "data"]
    assert parameters(base._handle_eio_disconnect)[1:] == ["eio_sid", "reason"]


def test_the_dispatch_handlers_keep_their_signatures() -> None:
    """``_handle_connect/_disconnect/_event/_ack``, which our ``_handle_eio_message`` calls
    with a packet decoded once, take what upstream's own dispatch passes them."""
    base = socketio.AsyncServer
    assert parameters(base._handle_connect)[1:] == ["eio_sid", "namespace", "data"]
    assert parameters(base._handle_disconnect)[1:] == ["eio_sid", "namespace", "reason"]
    assert parameters(base._handle_event)[1:] == ["eio_sid", "namespace", "id", "data"]
    assert parameters(base._handle_ack)[1:] == ["eio_sid", "namespace", "id", "data"]
    assert socket_server().reason.CLIENT_DISCONNECT == "client disconnect"


def test_socketio_packets_decode_as_the_checks_assume() -> None:
    """The packet class decodes types, ids and attachment counts the way ``decode_packet``
    reads them; junk raises rather than decoding to something plausible."""
    sio = socket_server()
    event = internals.decode_packet(sio, '21["message",{"content":"hi"}]')
    assert (event.packet_type, event.id, event.data) == (
        packet.EVENT, 1, ["message", {"content": "hi"}])
    announcing = sio.packet_class(encoded_packet='52-["message",{"_placeholder":true,"num":0}]')
    assert (announcing.packet_type, announcing.attachment_count) == (packet.BINARY_EVENT, 2)
    assert sio.packet_class(encoded_packet="").data is None  # "4": an event with no data
    for junk in ('2["message",', "2" + "[" * 100_000, "9", "", '4{"message":"x"}', "2{}"):
        try:
            internals.decode_packet(sio, junk)
        except internals.BadPacket:
            continue
        raise AssertionError(f"{junk[:20]!r} was not refused")


def test_engineio_skips_json_after_a_message_type_digit() -> None:
    """engine.io parses a MESSAGE's data as JSON unless its second character is a digit,
    which is why ``engine_packet_problem`` insists on one (deep JSON would raise)."""
    assert eio_packet.Packet(encoded_packet='42["x"]').data == '2["x"]'
    assert internals.engine_packet_problem("4" + "[" * 10) is not None
    assert internals.engine_packet_problem('42["x"]') is None
    assert internals.engine_packet_problem("2probe") is None


async def test_engineio_sockets_are_found_by_id_and_carry_the_flags_used() -> None:
    """``AsyncServer.sockets`` maps an Engine.IO id to its socket, whose ``sid``, ``queue``,
    ``upgraded``, ``closing`` and ``closed`` mean what they say."""
    async with LocalServer() as server, http_session() as http:
        raw = await RawSocket.open(http, server.url)
        socket = await only_socket(server)

        assert server.server.sio.eio.sockets[socket.sid] is socket
        assert isinstance(socket.queue, asyncio.Queue)
        assert (socket.upgraded, socket.closing, socket.closed) == (True, False, False)
        await internals.close_now(socket)
        assert socket.closed
        await raw.close()


async def test_the_outgoing_queue_replaces_the_sockets_queue(server: LocalServer) -> None:
    """``AsyncSocket.queue`` is looked up on the socket for every send and poll, and
    ``asyncio.Queue.put`` goes through ``put_nowait``: a replaced queue bounds them all."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        socket = await only_socket(server)
        assert isinstance(socket.queue, OutgoingQueue)
        await alice.barrier()  # sends and acknowledgements flow through it

    full: list[bool] = []
    queue = OutgoingQueue(2, on_full=lambda: full.append(True))
    for item in ("a", "b", "c", "d"):
        await queue.put(item)
    await queue.put(None)
    assert (queue.qsize(), full) == (3, [True])


async def test_a_replaced_poll_is_what_the_websocket_writer_calls(server: LocalServer) -> None:
    """The WebSocket writer calls ``socket.poll()`` looked up on the instance each time, so a
    signed-in WebSocket gets the timer-free poll, and messages still flow."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        socket = await only_socket(server)
        assert socket.poll.__func__ is internals.poll
        await alice.barrier()
    assert "self.poll()" in inspect.getsource(async_socket.AsyncSocket._websocket_handler)


async def test_the_websocket_driver_class_is_replaceable_per_server() -> None:
    """``_async["websocket"]`` is engine.io's aiohttp ``WebSocket``, built as
    ``(handler, server)`` with the socket's bound ``_websocket_handler``; ours sees the
    request (to reset it) and the frames (to refuse them)."""
    assert socketio.AsyncServer(async_mode="aiohttp").eio._async["websocket"] \
        is eio_aiohttp.WebSocket
    assert parameters(eio_aiohttp.WebSocket.__init__)[1:] == ["handler", "server"]
    assert inspect.iscoroutinefunction(eio_aiohttp.WebSocket.wait)
    async with LocalServer() as server, http_session() as http:
        raw = await RawSocket.open(http, server.url)
        sio = server.server.sio
        socket = await only_socket(server)

        assert sio.eio._async["websocket"].func is CheckedWebSocket
        assert isinstance(sio.engine_sockets[socket.sid].websocket, web.Request)
        await raw.close()


async def test_handle_post_request_is_looked_up_on_the_socket() -> None:
    """engine.io calls ``socket.handle_post_request(environ)`` on the instance, so a bad
    long-polling payload reaches our wrapper: 400, and the socket is closed."""
    async with LocalServer() as server, http_session() as http:
        polling = f"{server.url}/socket.io/?EIO=4&transport=polling"
        async with http.get(polling) as resp:
            assert resp.status == 200
        socket = await only_socket(server)
        assert socket.handle_post_request.func.__name__ == "_receive_payload"

        async with http.post(f"{polling}&sid={socket.sid}", data=b"9") as resp:
            assert resp.status == 400
        assert socket.closed


async def test_close_now_ends_a_websocket_whose_client_keeps_it_open() -> None:
    """``close(wait=False, abort=True)`` then ``None`` on the queue ends the transport; the
    async close alone leaves the writer waiting (which is why ``close_now`` adds it)."""
    assert "put" not in inspect.getsource(async_socket.AsyncSocket.close)
    assert parameters(async_socket.AsyncSocket.close)[1:] == ["wait", "abort", "reason"]
    async with LocalServer() as server, http_session() as http:
        raw = await RawSocket.open(http, server.url)
        await internals.close_now(await only_socket(server))

        assert await raw.wait_closed(5)
        await raw.close()


def test_payload_max_decode_packets_is_the_limit_decode_applies() -> None:
    """``Payload.max_decode_packets`` is a class attribute that ``decode`` checks; the server
    raises it to ``max_http_buffer_size``."""
    socket_server()
    assert eio_payload.Payload.max_decode_packets >= 1_000_000
    body = "\x1e".join(["42[\"message\",{}]"] * 100)
    assert len(eio_payload.Payload(encoded_payload=body).packets) == 100


def test_attach_registers_what_engineio_would() -> None:
    """Our ``attach`` adds the routes engine.io's aiohttp driver adds (GET, POST, OPTIONS at
    ``/socket.io/``), in front of ``eio.handle_request``."""
    def routes(app: web.Application) -> set[tuple[str, str]]:
        return {(route.method, route.resource.canonical)  # type: ignore[union-attr]
                for route in app.router.routes()}

    theirs, ours = web.Application(), web.Application()
    eio_aiohttp.create_route(theirs, socket_server().eio, "/socket.io/")
    socket_server().attach(ours)
    assert routes(ours) == routes(theirs)
