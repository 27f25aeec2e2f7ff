"""Each private part of python-socketio / python-engineio that roomz.server.internals relies on.

One test per assumption listed in the module's docstring: if an upgrade changes one, the
test that names it fails here, rather than a server hanging or leaking in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import engineio
import pytest
import redis.asyncio as aioredis
import socketio
from aiohttp import web
from aiohttp.http import HttpProcessingError
from aiohttp.log import server_logger
from engineio import async_socket
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet

from roomz.server import internals
from roomz.server.addresses import ClientAddresses
from roomz.server.internals import (
    AsyncPubSubManager,
    CheckedWebSocket,
    OutgoingQueue,
    SocketServer,
)
from roomz.server.local import LocalServer
from roomz.server.redis_state import RedisFanOutManager
from tests.nodes.conftest import SECRET
from tests.nodes.redis_proc import RedisProcess
from tests.security.hostile_clients import (
    ENGINE_PATH,
    RawSocket,
    http_session,
    open_non_reader,
    signed_in_over_polling,
)
from tests.waiting import wait_until

from .helpers import signed_in

ALICE = "alice@example.com"


def socket_server() -> SocketServer:
    return SocketServer(connect_timeout=5, max_connections=10, max_queued_events=10,
                        max_unfinished_per_address=10, addresses=ClientAddresses(),
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
        assert isinstance(socket.queue, OutgoingQueue)
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


def test_the_outgoing_queue_has_every_queue_method_engineio_calls() -> None:
    """engine.io's socket calls only these methods of its queue, which :class:`OutgoingQueue`
    has without being an ``asyncio.Queue``: a new call upstream fails here first."""
    called = set(re.findall(r"self\.queue\.(\w+)", inspect.getsource(async_socket)))
    assert called == {"get", "get_nowait", "put", "put_nowait", "task_done", "join"}
    assert all(callable(getattr(OutgoingQueue, name, None)) for name in called)


async def test_the_outgoing_queue_keeps_order_wakes_getters_and_joins() -> None:
    """As ``asyncio.Queue``: first in, first out; a waiting ``get`` wakes on ``put``; a
    cancelled one takes nothing; ``join`` returns once every packet is marked done."""
    queue = OutgoingQueue(10, on_full=lambda: None)
    cancelled = asyncio.create_task(queue.get())
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    for item in ("a", "b", "c"):
        await queue.put(item)
    assert await asyncio.wait_for(waiting, 1) == "a"
    assert [queue.get_nowait(), await asyncio.wait_for(queue.get(), 1)] == ["b", "c"]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    joined = asyncio.create_task(queue.join())
    queue.task_done()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()


async def test_the_websocket_session_does_what_upstreams_handler_does(
        server: LocalServer) -> None:
    """:func:`internals.websocket_session` stands in for ``_websocket_handler``, whose steps
    it repeats: the upgrade's probe, NOOP and UPGRADE, ``receive`` for each packet, a
    writer that closes the WebSocket on ``None``, and the close once the reader ends. A
    client that upgrades from long-polling exchanges messages over it, and no writer task
    is left once nothing waits to be written."""
    handler = inspect.getsource(async_socket.AsyncSocket._websocket_handler)
    for step in ("decoded_pkt.packet_type != packet.PING", "decoded_pkt.data != 'probe'",
                 "packet.Packet(packet.PONG, data='probe')",
                 "self.queue.put(packet.Packet(packet.NOOP))",
                 "decoded_pkt.packet_type != packet.UPGRADE", "self.upgraded = True",
                 "self.connected = True", "await self.receive(pkt)",
                 "await self.queue.put(None)", "await ws.close()",
                 "await self.close(wait=False, abort=True,\n"
                 "                         reason=self.server.reason.TRANSPORT_CLOSE)"):
        assert step in handler, step
    assert "await self.handler(self)" in inspect.getsource(eio_aiohttp.WebSocket.__call__)
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:  # long-polling first, then upgraded
        assert alice.sio.transport() == "websocket"
        socket = await only_socket(server)
        writer = socket.queue.writer
        assert isinstance(writer, internals.PacketWriter)
        assert socket.send.func is internals.send_now  # signed in before it upgraded
        async with signed_in(server.url, token) as again:
            await again.call("message", {"content": "over the session"})
            await alice.wait_for("message", lambda d: d["content"] == "over the session")
        await alice.barrier()
        assert not writer.busy and writer.task is None


async def test_a_socket_signed_in_over_long_polling_writes_at_once_once_upgraded(
        server: LocalServer) -> None:
    """A browser signs in over long-polling, then upgrades (engine.io's probe, then
    UPGRADE): from then on its packets are written at once (:func:`send_now`), and a
    message reaches it over the WebSocket."""
    token = await server.sign_in(ALICE)
    cookie = {"Cookie": f"session_token={token}"}
    async with http_session() as http, signed_in(server.url, token) as sender:
        sid = await signed_in_over_polling(http, server.url, token)
        socket = server.server.sio.eio.sockets[sid]
        assert getattr(socket.send, "func", None) is not internals.send_now  # not upgraded yet
        ws = await http.ws_connect(f"{server.url}{ENGINE_PATH}&sid={sid}", headers=cookie)
        await ws.send_str("2probe")
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "3probe"
        await ws.send_str("5")
        raw = RawSocket(ws)
        await wait_until(lambda: socket.upgraded, 5, "the upgrade")
        await wait_until(lambda: getattr(socket.send, "func", None) is internals.send_now, 5,
                         "writes at once")
        await sender.call("message", {"content": "after the upgrade"})
        await raw.wait_text(lambda text: "after the upgrade" in text)
        await raw.close()


async def test_a_client_that_stops_answering_pings_is_closed_by_the_monitor() -> None:
    """The session has no timer of its own: engine.io's monitor task (``monitor_clients``,
    on by default) closes a socket whose PING went unanswered for ``ping_timeout``, with
    the reason ``PING_TIMEOUT``; a client that answers stays."""
    assert socket_server().eio.start_service_task  # monitor_clients: on
    assert "await s.check_ping_timeout()" in inspect.getsource(engineio.AsyncServer._service_task)
    assert "reason=self.server.reason.PING_TIMEOUT" in inspect.getsource(
        async_socket.AsyncSocket.check_ping_timeout)
    async with LocalServer(ping_interval=0.3, ping_timeout=0.3) as server, \
            http_session() as http:
        token = await server.sign_in(ALICE)
        mute = await RawSocket.open(http, server.url, token, answers_pings=False)
        await mute.sign_in()
        answering = await RawSocket.open(http, server.url, token)
        await answering.sign_in()

        assert await mute.wait_closed(0.3 + 2 * 0.3 + 2.0)
        assert "2" in mute.texts  # it was pinged, and said nothing
        await answering.wait_text(lambda _: answering.texts.count("2") >= 4)
        assert not answering.closed.is_set()
        assert len(server.server.sio.eio.sockets) == 1
        await answering.close()
        await mute.close()


async def test_a_client_that_neither_reads_nor_answers_is_cut_off_at_its_ping_timeout() -> None:
    """A client that stops reading leaves its writer stuck on a full buffer, below the
    queue's limit: once its PING is found unanswered, the server aborts the TCP connection
    (a polite close would wait on it forever), and forgets the socket."""
    # No PING comes while the buffer fills; the monitor looks every half second.
    async with LocalServer(ping_interval=60.0, ping_timeout=0.5, message_rate=10_000,
                           message_burst=10_000) as server:
        token = await server.sign_in(ALICE)
        stuck = await open_non_reader(server.url, token)
        sio = server.server.sio
        await wait_until(lambda: len(sio.engine_sockets) == 1, 5, "the non-reader")
        ((eio_sid, kept),) = sio.engine_sockets.items()
        assert kept.websocket is not None and kept.websocket.transport is not None
        transport, writer = kept.websocket.transport, kept.socket.queue.writer
        try:
            async with signed_in(server.url, token) as sender:
                for _ in range(200):  # until the writer waits on the full buffer: bounded
                    if writer.busy and transport.get_write_buffer_size() > 0:
                        break
                    await asyncio.gather(*(sender.emit("message", {"content": "x" * 900})
                                           for _ in range(20)))
                    await sender.barrier()
                assert writer.busy and kept.socket.queue.qsize() < 1000  # not "too slow"
                kept.socket.last_ping = time.time() - 10  # a PING it never answered
                await wait_until(transport.is_closing, 0.5 * 2 + 3, "the abort")
                await wait_until(lambda: eio_sid not in sio.engine_sockets, 5, "forgotten")
        finally:
            stuck.close()


async def test_one_websocket_per_socket_and_an_upgrade_has_ping_timeout_to_finish() -> None:
    """A second WebSocket for a socket that has one is refused (400); a WebSocket that
    never sends the probe is closed after ``ping_timeout``, and the client may try again
    (upstream takes any number, and waits for a probe forever)."""
    async with LocalServer(ping_interval=10.0, ping_timeout=1.0) as server, \
            http_session() as http:
        token = await server.sign_in(ALICE)
        sid = await signed_in_over_polling(http, server.url, token)
        url = f"{server.url}{ENGINE_PATH}&sid={sid}"
        silent = await http.ws_connect(url)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 400
        assert (await asyncio.wait_for(silent.receive(), 1.0 + 2)).type in (
            aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)

        again = await http.ws_connect(url)  # after the failed upgrade: allowed
        await again.send_str("2probe")
        assert (await asyncio.wait_for(again.receive(), 5)).data == "3probe"
        await again.send_str("5")
        socket = server.server.sio.eio.sockets[sid]
        await wait_until(lambda: socket.upgraded, 5, "the upgrade")
        await again.close()
        await silent.close()


async def test_the_websocket_driver_class_is_replaceable_per_server() -> None:
    """``_async["websocket"]`` is engine.io's aiohttp ``WebSocket``, built as
    ``(handler, server)`` with the socket's bound ``_websocket_handler``; ours sees the
    request (to reset it) and the frames (to refuse them)."""
    assert socketio.AsyncServer(async_mode="aiohttp").eio._async["websocket"] \
        is eio_aiohttp.WebSocket
    assert parameters(eio_aiohttp.WebSocket.__init__)[1:] == ["handler", "server"]
    assert inspect.iscoroutinefunction(eio_aiohttp.WebSocket.wait)
    # Ours returns the driver's coroutine for engine.io to await, and reads frames as the
    # driver's wait does, so neither keeps a frame of its own for the WebSocket's life.
    assert "await ws(environ)" in inspect.getsource(async_socket.AsyncSocket._upgrade_websocket)
    assert "await self._sock.receive()" in inspect.getsource(eio_aiohttp.WebSocket.wait)
    async with LocalServer() as server, http_session() as http:
        raw = await RawSocket.open(http, server.url)
        sio = server.server.sio
        socket = await only_socket(server)

        assert sio.eio._async["websocket"].func is CheckedWebSocket
        assert isinstance(sio.engine_sockets[socket.sid].websocket, web.Request)
        await raw.close()


async def test_pings_wait_on_a_timer_where_upstream_sleeps_in_a_task() -> None:
    """engine.io schedules a ping once the connect handlers ran and on every PONG, one wait
    at a time; ``_send_ping`` sleeps ``ping_interval``, sets ``last_ping`` by
    ``time.time`` and sends a PING. Every socket's ``schedule_ping`` is
    :func:`internals.ping_later`, and a client that answers is pinged again and again."""
    schedule = inspect.getsource(async_socket.AsyncSocket.schedule_ping)
    assert "if self.last_ping:" in schedule and "self.last_ping = None" in schedule
    send_ping = inspect.getsource(async_socket.AsyncSocket._send_ping)
    assert "asyncio.sleep(self.server.ping_interval)" in send_ping
    assert "self.last_ping = time.time()" in send_ping
    assert "self.send(packet.Packet(packet.PING))" in send_ping
    connect = inspect.getsource(engineio.AsyncServer._handle_connect)
    assert connect.index("_trigger_event('connect'") < connect.index("s.schedule_ping()")
    assert "self.schedule_ping()" in inspect.getsource(async_socket.AsyncSocket.receive)
    async with LocalServer(ping_interval=0.5, ping_timeout=5.0) as server, \
            http_session() as http:
        raw = await RawSocket.open(http, server.url)  # it answers every ping
        socket = await only_socket(server)
        assert socket.schedule_ping.__func__ is internals.ping_later
        await raw.wait_text(lambda _: raw.texts.count("2") >= 3)
        assert not raw.closed.is_set()
        await raw.close()


def test_a_handshake_is_a_request_engineio_finds_no_sid_in() -> None:
    """engine.io reads ``sid`` from ``parse_qs`` of the query string (blank values
    dropped): the capacity checks in front of it see handshakes the same way."""
    source = inspect.getsource(engineio.AsyncServer.handle_request)
    assert "urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))" in source
    assert "query['sid'][0] if 'sid' in query else None" in source
    assert internals.is_handshake("EIO=4&transport=websocket")
    assert internals.is_handshake("EIO=4&transport=polling&sid=")
    assert not internals.is_handshake("EIO=4&transport=polling&sid=abc")


async def test_the_environ_holds_what_the_drivers_environ_holds() -> None:
    """engine.io builds each request's environ with its driver's ``translate_request``,
    looked up in ``_async``; ours, :class:`RequestEnviron`, which python-socketio keeps for
    the socket, has the same keys and values: repeated headers, a content type and a
    forwarded scheme included."""
    assert socketio.AsyncServer(async_mode="aiohttp").eio._async["translate_request"] \
        is eio_aiohttp.translate_request
    assert "translate_request = self._async['translate_request']" in inspect.getsource(
        engineio.AsyncServer.handle_request)
    headers = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http"),
               ("Content-Type", "text/plain"), ("X-Custom-Thing", "a")]
    async with LocalServer() as server, http_session() as http:
        raw = RawSocket(await http.ws_connect(server.url + ENGINE_PATH, headers=headers))
        await raw.wait_text(lambda text: text.startswith("0"))
        socket = await only_socket(server)
        environ = server.server.sio.environ[socket.sid]
        assert isinstance(environ, internals.RequestEnviron)
        theirs = eio_aiohttp.translate_request(environ["aiohttp.request"])
        assert dict(environ) == theirs and len(environ) == len(theirs)
        assert (environ["wsgi.url_scheme"], environ["HTTP_X_FORWARDED_PROTO"]) \
            == ("https,http", "https,http")
        assert "HTTP_NOT_SENT" not in environ and environ.get("CONTENT_TYPE") == "text/plain"
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
    """``Payload.max_decode_packets`` is a class attribute that ``decode`` checks, before
    decoding any packet; the server raises it to ``MAX_PAYLOAD_PACKETS``."""
    socket_server()
    assert eio_payload.Payload.max_decode_packets == internals.MAX_PAYLOAD_PACKETS
    body = "\x1e".join(['42["message",{}]'] * internals.MAX_PAYLOAD_PACKETS)
    assert len(eio_payload.Payload(encoded_payload=body).packets) == 256
    with pytest.raises(ValueError):
        eio_payload.Payload(encoded_payload=body + '\x1e42["message",{}]')


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


async def test_a_long_polling_socket_answers_with_the_bounded_long_poll() -> None:
    """A long-polling GET takes its packets from ``socket.poll()`` (looked up on the
    instance), which is ours on a socket that is not a WebSocket; it reads the server's
    ``ping_interval`` and ``ping_timeout`` as upstream's does, and raises ``QueueEmpty``
    when nothing came, which the GET handles."""
    get = inspect.getsource(async_socket.AsyncSocket.handle_get_request)
    assert "packets = await self.poll()\n        except exceptions.QueueEmpty:" in get
    assert "ping_interval + self.server.ping_timeout" in inspect.getsource(
        async_socket.AsyncSocket.poll)
    async with LocalServer() as server, http_session() as http:
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling") as resp:
            assert resp.status == 200
        socket = await only_socket(server)
        assert socket.poll.__func__ is internals.long_poll
        await internals.close_now(socket)


def test_the_namespace_hooks_keep_their_names_and_signatures() -> None:
    """A namespace ends through ``_handle_disconnect`` (the client's DISCONNECT, the socket
    closing) or ``disconnect`` (the server's); the manager's ``eio_sid_from_sid``,
    ``sid_from_eio_sid``, ``is_connected`` and ``is_pre_connected`` say which socket a sid
    is on and whether its connect is accepted or pending."""
    base = socketio.AsyncServer
    assert parameters(base.disconnect)[1:] == ["sid", "namespace", "ignore_queue"]
    assert "self._handle_disconnect(eio_sid, n, reason)" in inspect.getsource(
        base._handle_eio_disconnect)
    assert socket_server().reason.TRANSPORT_CLOSE == "transport close"
    manager = socketio.AsyncManager()
    assert parameters(manager.eio_sid_from_sid) == ["sid", "namespace"]
    assert parameters(manager.sid_from_eio_sid) == ["eio_sid", "namespace"]
    assert parameters(manager.is_connected) == ["sid", "namespace"]
    assert parameters(manager.is_pre_connected) == ["sid", "namespace"]


async def test_a_connect_in_progress_is_pre_connected_not_connected() -> None:
    """While the connect handler runs, the manager has the sid pre-connected and not
    connected: why a deadline that fires then waits, rather than closing the socket."""
    sio = socket_server()
    seen: list[tuple[bool, bool]] = []

    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        seen.append((sio.manager.is_pre_connected(sid, "/"), sio.manager.is_connected(sid, "/")))

    sio.on("connect", connect)
    sio.environ["e1"] = {}
    await sio._handle_connect("e1", "/", None)
    assert seen == [(True, False)]
    sid = sio.manager.sid_from_eio_sid("e1", "/")
    assert (sio.manager.is_pre_connected(sid, "/"), sio.manager.is_connected(sid, "/")) == (
        False, True)


def test_the_fan_out_builds_and_sends_packets_as_upstreams_manager() -> None:
    """``FanOutManager.emit`` is upstream's ``AsyncManager.emit`` without a task per
    recipient: the same packet class, Engine.IO MESSAGE wrapping and ``send_packet``."""
    emit = inspect.getsource(socketio.AsyncManager.emit)
    assert "self.server.packet_class(\n                packet.EVENT, namespace=namespace" in emit
    assert "eio_packet.Packet(eio_packet.MESSAGE, p)" in emit
    assert "self.get_participants(namespace, room)" in emit
    assert "self.server._send_eio_packet(eio_sid, p)" in emit
    assert "await self.eio.send_packet(eio_sid, eio_pkt)" in inspect.getsource(
        socketio.AsyncServer._send_eio_packet)
    assert parameters(engineio.AsyncServer.send_packet)[1:] == ["sid", "pkt"]


class Publisher:
    """The stores' Redis client, as far as publishing goes: it records what is published."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, channel: str, data: str) -> int:
        self.published.append(data)
        return 1


async def test_a_pubsub_manager_reaches_other_nodes_through_publish() -> None:
    """``AsyncPubSubManager`` sends every emit to the other nodes by ``self._publish(data)``
    (a dict), which ``RedisFanOutManager`` implements: an emit reaches our publisher."""
    assert parameters(AsyncPubSubManager._publish)[1:] == ["data"]
    publisher = Publisher()
    manager = RedisFanOutManager("redis://127.0.0.1:9/0", publisher=publisher)  # type: ignore[arg-type]
    socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)

    await manager.emit("message", {"content": "hi"}, namespace="/", room="user:a")

    (published,) = publisher.published
    assert json.loads(published)["data"] == [{"content": "hi"}]


async def test_a_kept_message_is_published_as_python_socketio_publishes_an_emit() -> None:
    """The history publishes a kept message in the shape of python-socketio's own emit
    (which ``_handle_emit`` reads), under the host ``"history"``, its cursor inside."""
    publisher = Publisher()
    manager = RedisFanOutManager("redis://127.0.0.1:9/0", publisher=publisher)  # type: ignore[arg-type]
    socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    await manager.emit("message", {"content": "hi"}, namespace="/", room="user:a")
    emitted = json.loads(publisher.published[0])

    head, tail = manager.kept_message("user:a", {"id": "m", "content": "hi", "cursor": "x"})
    kept = json.loads(head + "1-0" + tail)

    assert kept.keys() == emitted.keys()
    assert kept | {"host_id": emitted["host_id"]} == emitted | {
        "data": [{"id": "m", "content": "hi", "cursor": "1-0"}]}
    assert kept["host_id"] == "history" != manager.host_id


class Listening(AsyncPubSubManager):  # type: ignore[misc]
    """A pub/sub manager whose ``_listen`` waits forever, or ends as stopping does."""

    def __init__(self, end_itself: bool = False) -> None:
        super().__init__()
        self.end_itself = end_itself
        self.listening: asyncio.Task[Any] | None = None
        self.stop = asyncio.Event()

    async def _listen(self) -> Any:
        self.listening = asyncio.current_task()
        await self.stop.wait()
        if self.end_itself:
            raise asyncio.CancelledError
        yield b""  # pragma: no cover


@pytest.mark.parametrize("end_itself", [False, True], ids=["cancelled", "ending-itself"])
async def test_initialize_starts_a_task_that_reads_listen_and_ends_quietly(
        end_itself: bool, caplog: pytest.LogCaptureFixture) -> None:
    """The documented ``initialize()`` starts a task that iterates ``_listen()``; cancelling
    that task (what ``RedisFanOutManager.stop`` does), or ``_listen`` raising
    ``CancelledError`` (stopped before the cancellation arrived), ends it without a log
    line. (Returning would log "pubsub listen() exited unexpectedly".)"""
    assert inspect.isasyncgenfunction(RedisFanOutManager._listen)
    manager = Listening(end_itself)
    socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    caplog.set_level(logging.DEBUG)

    manager.initialize()
    await wait_until(lambda: manager.listening is not None, 5, "the subscriber reading")
    assert manager.listening is not None
    if end_itself:
        manager.stop.set()
    else:
        manager.listening.cancel()
    await asyncio.wait_for(asyncio.wait({manager.listening}), 5)

    assert manager.listening.done()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


class Hearing(AsyncPubSubManager):  # type: ignore[misc]
    """A pub/sub manager that hears two messages, noting what its server delivered of the
    first by the time its loop asks for the second."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[Any] = []
        self.when_asked: list[Any] = []
        self.done = asyncio.Event()

    async def _handle_emit(self, message: Any) -> None:  # what delivering to sockets is
        await asyncio.sleep(0)  # a delivery that awaits, as writes to sockets do
        self.delivered.append(message["data"])

    async def _listen(self) -> Any:
        for content in ("first", "second"):
            yield {"method": "emit", "event": "message", "data": [content], "room": "r",
                   "namespace": "/", "host_id": "history"}
            self.when_asked.append(list(self.delivered))
        self.done.set()
        await asyncio.Event().wait()


async def test_the_pubsub_loop_takes_dicts_and_delivers_each_before_the_next() -> None:
    """``RedisFanOutManager._listen`` yields decoded messages (python-socketio's loop takes
    a dict as it is), delivers those of any ``host_id`` but its own (the history's have
    ``"history"``), and asks ``_listen`` for the next only once it delivered the last: the
    node notes a kept message delivered there (``delivered_here``)."""
    manager = Hearing()
    socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    manager.initialize()
    try:
        await asyncio.wait_for(manager.done.wait(), 5)
        assert manager.delivered == [["first"], ["second"]]
        assert manager.when_asked == [[["first"]], [["first"], ["second"]]]
    finally:
        manager.thread.cancel()


@pytest.fixture
async def redis() -> AsyncIterator[RedisProcess]:
    """A fresh redis-server on a free loopback port."""
    async with RedisProcess() as running:
        yield running


async def test_a_node_listens_before_its_first_client_and_until_it_stops(
        redis: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    """Started on Redis, a node is subscribed before any client connects; the first
    connect, at which python-socketio calls ``initialize()`` again, adds no second
    subscriber; what another node publishes reaches the client through ``_listen``; and
    a stopped node is subscribed no more, without an error."""
    bus = aioredis.from_url(redis.url)
    server = LocalServer(redis_url=redis.url, jwt_secret=SECRET)
    await asyncio.wait_for(server.start(), 10)
    try:
        assert await bus.pubsub_numsub("socketio") == [(b"socketio", 1)]
        async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
            await alice.barrier()
            assert await bus.pubsub_numsub("socketio") == [(b"socketio", 1)]
            channel = alice.authenticated["channel"]
            await bus.publish("socketio", json.dumps({
                "method": "emit", "event": "user_left", "data": [{"from": "elsewhere"}],
                "namespace": "/", "room": channel, "skip_sid": None, "callback": None,
                "host_id": "another node"}))
            assert await alice.wait_for("user_left") == {"from": "elsewhere"}
    finally:
        caplog.set_level(logging.ERROR)
        await asyncio.wait_for(server.stop(), 10)
        numsub = await bus.pubsub_numsub("socketio")
        await bus.aclose()
    assert numsub == [(b"socketio", 0)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# The aiohttp behaviours the server relies on

@contextlib.asynccontextmanager
async def plain_aiohttp(**runner_options: Any) -> Any:
    """A bare aiohttp application on a loopback port (no Roomz code), yielding its port."""
    app = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_aiohttp_keepalive_timeout_closes_a_connection_without_a_request_head() -> None:
    """``keepalive_timeout`` runs from the moment a connection is accepted, so it also
    closes one whose request head never ends: the server's header timeout."""
    async with plain_aiohttp(keepalive_timeout=0.3) as port:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_aiohttp_pauses_reading_when_the_unread_body_passes_twice_read_bufsize() -> None:
    """A request's body stream (``read_bufsize`` is its limit) pauses its connection's
    reading once more than twice the limit is unread: ``read_buffer_size`` is set so that
    a whole body of the largest size fits below that."""
    class Protocol:
        paused = False

        def pause_reading(self) -> None:
            self.paused = True

    protocol = Protocol()
    stream = aiohttp.StreamReader(protocol, 10, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    stream.feed_data(b"x" * 20)
    assert not protocol.paused
    stream.feed_data(b"x")
    assert protocol.paused


async def test_aiohttp_logs_a_malformed_request_with_its_peer_and_the_parse_error() -> None:
    """aiohttp logs a request it cannot parse on ``aiohttp.server`` with the peer as
    ``record.args[0]`` and an ``HttpProcessingError`` as the exception: what
    ``bad_http_log.QuietBadRequests`` reads."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    server_logger.addHandler(handler)
    try:
        async with plain_aiohttp() as port:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
            assert b" 400 Bad Request" in await asyncio.wait_for(reader.read(), 5)
            writer.close()
            await wait_until(lambda: bool(records), 5, "aiohttp's log record")
    finally:
        server_logger.removeHandler(handler)
    (record,) = records
    assert record.exc_info is not None and isinstance(record.exc_info[1], HttpProcessingError)
    assert isinstance(record.args, tuple) and record.args[0] == "127.0.0.1"


async def test_the_server_encodes_with_its_own_packet_class_not_process_wide(
        server: LocalServer) -> None:
    """``serializer`` makes :class:`WirePacket` the server's ``packet_class``; python-socketio
    reads ``json`` and ``uses_binary_events`` off the class it builds packets with, so its
    own ``Packet`` (and the clients in this process) keep the standard library."""
    assert server.server.sio.packet_class is internals.WirePacket
    assert packet.Packet.json is engineio.json
    source = inspect.getsource(packet.Packet)
    assert "if self.uses_binary_events and" in source
    assert "self.json.dumps(data, separators=(',', ':'))" in source
    assert "self.data = self.json.loads(ep)" in source
    assert "packet.ACK" in inspect.getsource(socketio.AsyncServer._handle_event_internal)
    assert "self.packet_class(" in inspect.getsource(socketio.AsyncServer._handle_event_internal)
    event = internals.WirePacket(packet.EVENT, data=["message", {"content": "é"}])
    assert event.encode() == '2["message",{"content":"é"}]'


async def test_a_signed_in_websocket_writes_at_once_when_nothing_waits(
        server: LocalServer) -> None:
    """``send_packet`` calls ``socket.send(pkt)`` looked up on the socket: a signed-in
    WebSocket's is :func:`send_now`, writing through the driver's ``_sock`` (aiohttp's
    ``WebSocketResponse``); ``AsyncSocket.send`` checks the ping timeout, then queues, as
    ``send_now`` does. 300 messages sent back to back arrive once each, in order."""
    source = inspect.getsource(async_socket.AsyncSocket.send)
    assert "await self.check_ping_timeout()" in source and "self.queue.put(pkt)" in source
    assert "await socket.send(pkt)" in inspect.getsource(engineio.AsyncServer.send_packet)
    assert "self._sock.send_str" in inspect.getsource(eio_aiohttp.WebSocket.send)
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as reader:
        socket = await only_socket(server)
        assert socket.send.func is internals.send_now
        assert isinstance(socket.queue.writer.websocket._sock, web.WebSocketResponse)
        async with signed_in(server.url, token) as sender:
            sent = [f"in order {i}" for i in range(300)]
            await asyncio.gather(*(sender.emit("message", {"content": c}) for c in sent))
            await sender.barrier()
            await reader.wait_for("message", lambda d: d["content"] == sent[-1])
        got = [d["content"] for d in reader.named("message") if d["content"] in sent]
        assert got == sent


async def test_a_client_gone_before_its_websocket_answer_leaves_no_traceback_and_no_socket(
) -> None:
    """A link cut right after a WebSocket handshake was sent (the soak found it): aiohttp
    raised ``ClientConnectionResetError`` from ``prepare`` and logged it as an error with a
    traceback (aiohttp#3966), and the socket opened for it stayed until ``connect_timeout``,
    counted as not signed in for its address. Now: one debug line, the socket closed."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    for logger in (server_logger, internals.log):
        logger.addHandler(handler)
    internals.log.setLevel(logging.DEBUG)
    try:
        async with LocalServer(connect_timeout=60.0) as server:
            token = await server.sign_in(ALICE)
            records.clear()  # the server's start and the sign-in
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", server.port), 5)
            writer.write(f"GET {ENGINE_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         f"Sec-WebSocket-Version: 13\r\nCookie: session_token={token}\r\n\r\n"
                         .encode())
            await writer.drain()
            writer.transport.abort()  # gone before the server answers
            await wait_until(lambda: bool(records), 5, "the server to notice the client left")
            assert [r.getMessage() for r in records] == [
                "a client from 127.0.0.1 left before its answer was written"]
            await wait_until(lambda: not server.server.sio.engine_sockets, 5,
                             "its Engine.IO socket closed")
    finally:
        internals.log.setLevel(logging.NOTSET)
        for logger in (server_logger, internals.log):
            logger.removeHandler(handler)
