"""The one place that reaches into python-socketio's and python-engineio's private parts.

A server on the internet needs bounds these libraries do not offer: this module adds them
by subclassing ``socketio.AsyncServer`` (:class:`SocketServer`) and by adjusting each
Engine.IO socket as it opens. It also holds the local fan-out (:class:`FanOutManager`),
which sends one event to a room the way python-socketio's manager does, minus a task per
recipient. ``tests/server/test_internals.py`` checks every assumption below against the
installed versions, so an upgrade fails a test instead of a server: to lift the caps in
``pyproject.toml``, run it against the new release.

Each private or undocumented name used, and why: the upstream issue where there is one,
else the reason no public route exists. (Public routes are used where they exist:
``attach`` is overridden to put capacity checks in front of ``eio.handle_request``;
``sio.reason``, the manager's ``get_namespaces``/``get_participants`` and
Engine.IO's ``send_packet`` are documented.)

python-socketio
  ``AsyncServer._handle_eio_connect`` / ``_handle_eio_disconnect`` (overridden): the only
      hooks that see each Engine.IO socket open and close, before any Socket.IO connect.
      Used to count sockets, give each its bounds and a deadline to sign in. No public
      route: Node's server has ``connectTimeout``, python-socketio has no equivalent (no
      upstream issue found).
  ``AsyncServer._handle_eio_message`` (overridden) and the handlers it dispatches to,
      ``_handle_connect``, ``_handle_disconnect``, ``_handle_event``, ``_handle_ack``:
      upstream decodes a packet inside the message hook and raises on junk ("4", "42[",
      "49", deep JSON, a client's CONNECT_ERROR); engine.io logs each with a traceback
      and keeps the connection (no upstream issue found). It also buffers binary
      attachments without limit (no upstream issue found; socketioxide's
      GHSA-55mf-67qm-4wpg is the same flaw). Here a packet is decoded once, checked, and
      dispatched, or the connection is closed.
  ``AsyncServer._handle_disconnect`` (overridden too) and ``disconnect``: every way a
      namespace ends (the client's DISCONNECT, the socket closing, the server's
      ``disconnect``) runs one of them; a socket that leaves its namespace gets a
      deadline to sign in again. No public hook sees a namespace end without its sid.
  ``AsyncServer.packet_class`` and ``socketio.packet`` (``Packet``, its type constants,
      ``packet_type``/``id``/``data``/``namespace``/``attachment_count``): the server's
      decoder and encoder, which the checks above and the fan-out call as upstream does.
      Undocumented: the wire format has no public API.
  ``Packet.json`` and ``Packet.uses_binary_events`` (class attributes, set in
      :class:`WirePacket`, given to the documented ``serializer`` option): the JSON module
      (:mod:`.wire_json`; the documented ``json`` option sets it on python-socketio's own
      class, process-wide, clients included) and whether each outgoing packet is
      searched for bytes (the protocol has none; msgpack's packet class turns it off too).
  ``AsyncServer.manager`` and its undocumented ``sid_from_eio_sid``,
      ``eio_sid_from_sid``, ``is_connected``, ``is_pre_connected``: which Socket.IO
      connection rides an Engine.IO socket, and whether it is accepted
      (``is_pre_connected`` is true while a connect handler runs). No public accessor;
      :func:`is_connected` is the one the rest of the server uses, to greet a connection
      once accepted and to tell a real disconnect from a client's event named
      "disconnect", which python-socketio hands to the disconnect handler of a live
      connection (no upstream issue found).
  ``AsyncManager.emit`` (documented), overridden by :class:`FanOutManager` and re-done
      with the parts above and ``eio.send_packet``: upstream sends to each recipient in a
      task of its own and waits for them all, a fraction of the CPU wasted at chat
      fan-out. No option turns that off.
  ``AsyncServer.eio``: the Engine.IO server underneath, undocumented; the way to all
      the python-engineio parts below.

python-socketio's pub/sub manager (``roomz/server/redis_state.py`` subclasses it)
  ``AsyncPubSubManager._publish`` / ``_listen``: the two methods its backends implement
      (its docstrings say so; python-socketio's own Redis, Kafka, Kombu and ZeroMQ
      managers do), underscored all the same. ``_publish(data)`` gets every emit,
      disconnect and room change bound for other nodes (a dict); ``_listen()`` is an
      async generator of the other nodes' messages, read by the task that the documented
      ``initialize()`` starts, which ends quietly when cancelled. We implement them
      rather than subclass ``AsyncRedisManager``, whose publisher, Redis being down,
      logs "giving up" and returns as if sent (messages lost in an outage:
      python-socketio#1411) and whose subscriber backs off to a minute between attempts
      (its cap, python-socketio#617).
      What we rely on of the loop that reads ``_listen()`` (``_thread``): it takes a dict
      as it is (we decode each message ourselves, to note where a kept message leaves
      its room), hands each message whose ``host_id`` is not this node's to
      ``_handle_emit`` (the history publishes kept messages under ``"history"``, so every
      node delivers them, its own included), and awaits that before it asks for the next
      message (so the generator, resumed, knows the last one was delivered here).
  ``socketio.async_pubsub_manager.AsyncPubSubManager``: the class is imported from its
      module, re-exported from here: the package exports (and documents) only the
      synchronous ``PubSubManager``.

python-engineio
  ``AsyncServer.sockets``: the Engine.IO socket behind an id (no public accessor).
  ``AsyncServer._async["websocket"]``: the aiohttp WebSocket driver class
      (``engineio.async_drivers.aiohttp.WebSocket``), replaced per server by a subclass
      whose ``wait`` refuses bad frames before they are decoded (upstream's reader decodes
      outside any ``try``: junk frames end in aiohttp tracebacks), which remembers the
      request, so a stuck reader's TCP connection can be aborted, and which lets one
      WebSocket per socket in (engine.io takes any number while one upgrades). It reads
      frames from ``_sock`` itself, as the driver's ``wait`` does. No option takes
      a driver. The driver calls the class as ``(handler, server)``, ``handler`` being
      the socket's bound ``_websocket_handler``, and awaits ``handler(driver)`` once the
      WebSocket is open; the driver's environ carries ``"aiohttp.request"``.
  ``AsyncSocket._websocket_handler``: a socket's whole life on its WebSocket (the upgrade
      from long-polling, the reader, a writer task). Our driver awaits
      :func:`websocket_session` in its place, the same steps on less memory and CPU per
      connection (it says where it differs). It calls what upstream's calls:
      ``AsyncSocket.receive`` for each packet, ``close``, and the ``connected`` /
      ``upgrading`` / ``upgraded`` flags it sets as upstream does. It has no timer of its
      own for a silent client: engine.io's monitor task (the documented
      ``monitor_clients``, on by default) closes a socket whose PING went unanswered for
      ``ping_timeout``, and :class:`SocketServer` then aborts its TCP connection. No
      option changes how engine.io reads or writes a WebSocket.
  ``AsyncServer._async["translate_request"]``: the driver's function that makes each
      request's environ, a dict with a copy of every header, which engine.io and
      python-socketio keep for a socket's life. Replaced per server by
      :class:`RequestEnviron`, the same keys and values read from the request.
  ``AsyncSocket.queue``: each socket's outgoing packets, an unbounded ``asyncio.Queue``
      (python-engineio#133, open: no back-pressure). Replaced by :class:`OutgoingQueue`,
      which has the ``asyncio.Queue`` methods engine.io calls on it, on less memory.
  ``AsyncSocket.poll``: what a long-polling GET calls for the next packets; it raises
      ``exceptions.QueueEmpty`` when there are none. Replaced by :func:`long_poll` (at
      most 16 packets per GET, which is all python-engineio's clients decode from one
      payload: python-engineio#142); it reads the socket's ``server`` for
      ``ping_interval`` and ``ping_timeout``.
  ``AsyncSocket.schedule_ping``: called once the connect handlers ran and on every PONG;
      starts a task that sleeps ``ping_interval`` (``_send_ping``) then sets ``last_ping``
      and sends a PING. Replaced on every socket by :func:`ping_later`, a timer instead
      of a sleeping task kept by every connection (no option changes how it waits).
  ``AsyncSocket.send``: what ``send_packet`` calls for each packet to a socket. On
      signed-in WebSocket sockets replaced by :func:`send_now`, which writes a packet at
      once when nothing waits before it, rather than waking a writer task for it (one
      task switch per recipient of every message: no option avoids it). The check
      ``send`` makes first, ``check_ping_timeout``, is kept.
  ``WebSocket._sock`` (engine.io's aiohttp driver): the ``web.WebSocketResponse`` it
      writes to. :class:`CheckedWebSocket` writes to it without the per-call
      ``inspect.iscoroutinefunction`` of the driver's ``send`` (aiohttp's are coroutines).
  ``AsyncSocket.handle_post_request``: wrapped, so a bad long-polling payload closes its
      socket with one line instead of a traceback (or a POST held open, below).
  ``AsyncSocket.close(wait=False, abort=...)`` plus ``queue.put_nowait(None)``: closing a
      socket now. ``AsyncServer.disconnect`` waits on ``queue.join()``, which never returns
      for a long-polling client that does not poll again; and the async socket's
      ``close`` wakes neither a WebSocket's writer nor a waiting long-poll (the sync one
      does since python-engineio#9), so every close here, ours or not, is followed by a
      ``None``.
  ``AsyncSocket.closed`` / ``closing`` / ``sid`` / ``last_ping``: state, read only
      (``last_ping`` is written as upstream's ``_send_ping`` and ``schedule_ping`` do).
  ``payload.Payload.max_decode_packets`` (a class attribute, so process-wide): 16 by
      default, and a long-polling POST with more packets loses all of them with a
      traceback (python-engineio#142, closed as a known limitation). Raised to
      :data:`MAX_PAYLOAD_PACKETS`; a payload with more is refused (400) before any of it
      is handled.
  ``packet.Packet`` and its type constants (``MESSAGE``, ``PING``, ``PONG``, ``NOOP``,
      ``UPGRADE``), ``packet_type``, ``data``, ``encode()`` and ``Packet(encoded_packet=)``:
      an Engine.IO MESSAGE wrapping an encoded Socket.IO packet, built once per fan-out as
      upstream's manager does; the frames :func:`websocket_session` decodes and the
      upgrade's probe and answer, as upstream's handler does (undocumented: the wire
      format has no public API).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import socketio
from aiohttp import web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet
from socketio.async_pubsub_manager import (  # not exported by the package: see above
    AsyncPubSubManager as AsyncPubSubManager,
)

from . import wire_json
from .addresses import ClientAddresses, limit_key
from .problems import problem
from .quiet_log import QuietLog

log = logging.getLogger("roomz.server")

NAMESPACE = "/"
#: Engine.IO packets a client may send: CLOSE, PONG, MESSAGE, UPGRADE (and the upgrade probe).
CLIENT_ENGINE_PACKETS = ("1", "3", "5")
UPGRADE_PROBE = "2probe"
SHOWN_CHARACTERS = 60  # of a bad packet, in its log line
#: Packets one long-polling POST may carry: more than any client batches, and few enough
#: that the acknowledgement and echo each message brings back cannot overflow the
#: sender's own outgoing queue (``max_queued_events``, 1000 by default).
MAX_PAYLOAD_PACKETS = 256
#: Packets one long-polling GET answers with: python-engineio's clients decode at most
#: this many from one payload, and drop the whole payload beyond.
MAX_POLL_PACKETS = 16


class BadPacket(Exception):
    """A packet the server will not handle; the message says what was wrong, in a few words."""

    def __init__(self, reason: str, *, binary: bool = False) -> None:
        super().__init__(reason)
        self.binary = binary


def engine_packet_problem(encoded: str | bytes) -> BadPacket | None:
    """Why a client's Engine.IO packet (one WebSocket frame) is refused, or None if it is not.

    Only what a client sends is accepted, in the shapes it sends it: engine.io would
    otherwise decode junk with no ``try`` around it, or parse JSON after a MESSAGE's type.
    """
    if not isinstance(encoded, str):
        return BadPacket("a binary message (the protocol uses none)", binary=True)
    if not encoded:
        return BadPacket("an empty Engine.IO packet")
    kind = encoded[0]
    if kind == "4":  # MESSAGE: a Socket.IO packet, whose type is a digit
        if len(encoded) > 1 and encoded[1] not in "0123456789":
            return BadPacket("a message that is not a Socket.IO packet")
        return None
    if kind == "b":
        return BadPacket("a binary message (the protocol uses none)", binary=True)
    if encoded == UPGRADE_PROBE or (kind in CLIENT_ENGINE_PACKETS and len(encoded) == 1):
        return None
    return BadPacket("an Engine.IO packet a client does not send")


def decode_packet(server: socketio.AsyncServer, data: Any) -> Any:
    """A client's Socket.IO packet, decoded and checked; :class:`BadPacket` when it is junk."""
    if not isinstance(data, str):
        raise BadPacket("a binary message (the protocol uses none)", binary=True)
    try:
        pkt = server.packet_class(encoded_packet=data)
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError):
        raise BadPacket("a packet that does not decode") from None
    kind = pkt.packet_type
    if kind in (packet.BINARY_EVENT, packet.BINARY_ACK) or pkt.attachment_count:
        raise BadPacket("a packet announcing binary attachments (the protocol uses none)",
                        binary=True)
    if kind == packet.CONNECT:
        if pkt.data is not None and not isinstance(pkt.data, dict):
            raise BadPacket("a CONNECT whose auth is not an object")
    elif kind == packet.EVENT:
        if not (isinstance(pkt.data, list) and pkt.data and isinstance(pkt.data[0], str)):
            raise BadPacket("an event without a name")
    elif kind == packet.ACK:
        if pkt.id is None or not isinstance(pkt.data, list):
            raise BadPacket("an acknowledgement without an id or arguments")
    elif kind == packet.CONNECT_ERROR:
        raise BadPacket("a CONNECT_ERROR, which only servers send")
    elif kind != packet.DISCONNECT:
        raise BadPacket("an unknown Socket.IO packet type")
    return pkt


def shown(data: Any) -> str:
    """The start of a packet, safe to log: escaped and cut short."""
    if isinstance(data, (bytes, bytearray)):
        return f"<{len(data)} bytes>"
    text = repr(data)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


class OutgoingQueue:
    """A socket's outgoing packets, at most ``limit`` of them.

    One more packet calls ``on_full`` (once) and is dropped: the connection is to be
    closed, having fallen too far behind. ``None``, which wakes the socket's writer to
    end the transport, is always taken.

    It does what engine.io asks of the ``asyncio.Queue`` it replaces (``put``, ``get``,
    their ``_nowait`` forms, ``task_done``, ``join``, ``empty``, ``qsize``), in FIFO order
    like it, on a fraction of the memory: ``asyncio.Queue`` makes four deques (its items,
    waiting getters, waiting putters, and its ``join`` event's waiters), 3 KB per
    connection kept for the connection's life. Here a list holds the packets (an empty
    deque alone takes 760 bytes; at most ``limit`` packets wait, and most are written at
    once by :func:`send_now`), a list the rare getters, and an event exists only while
    someone joins.
    """

    def __init__(self, limit: int, on_full: Callable[[], None]) -> None:
        self.limit = limit
        #: What writes this queue to the socket's WebSocket, once it has one.
        self.writer: PacketWriter | None = None
        self._on_full: Callable[[], None] | None = on_full
        self._packets: list[Any] = []
        self._getters: list[asyncio.Future[None]] = []
        self._unfinished = 0  # packets put and not yet marked done, for join()
        self._all_done: asyncio.Event | None = None

    def qsize(self) -> int:
        """How many packets wait."""
        return len(self._packets)

    def empty(self) -> bool:
        """True when no packet waits."""
        return not self._packets

    def put_nowait(self, item: Any) -> None:
        """Queue ``item`` unless ``limit`` packets are waiting."""
        if item is not None and len(self._packets) >= self.limit:
            if self._on_full is not None:
                on_full, self._on_full = self._on_full, None
                on_full()
            return
        self._packets.append(item)
        self._unfinished += 1
        self._wake_getter()
        if self.writer is not None:
            self.writer.wake()

    async def put(self, item: Any) -> None:
        """:meth:`put_nowait`: the queue never makes a putter wait."""
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        """The oldest packet; ``asyncio.QueueEmpty`` when there is none."""
        if not self._packets:
            raise asyncio.QueueEmpty
        return self._packets.pop(0)

    async def get(self) -> Any:
        """The oldest packet, once there is one (as ``asyncio.Queue.get``, cancellation too)."""
        while not self._packets:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._packets and not getter.cancelled():
                    self._wake_getter()  # it was woken for a packet it will not take
                raise
        return self._packets.pop(0)

    def task_done(self) -> None:
        """Mark one packet taken as handled; ``ValueError`` when none is left to mark."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._all_done is not None:
            self._all_done.set()
            self._all_done = None

    async def join(self) -> None:
        """Wait until every packet put has been marked done."""
        if self._unfinished:
            if self._all_done is None:
                self._all_done = asyncio.Event()
            await self._all_done.wait()

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    def take_over(self, old: asyncio.Queue[Any]) -> None:
        """Move the packets of the queue this one replaces (an Engine.IO OPEN, say)."""
        while not old.empty():
            self._packets.append(old.get_nowait())
            self._unfinished += 1
            old.task_done()


class PacketWriter:
    """Writes a WebSocket's packets one frame at a time: at once when nothing waits
    (:meth:`write_now`), else from the queue, in a task that runs only while some wait.

    engine.io keeps a writer task per WebSocket, waiting on the socket's queue for its whole
    life (a task, four coroutines and a future, about 1 KB per connection). Here a task
    starts when a packet is queued, writes until the queue is empty, and ends. ``None`` in
    the queue closes the WebSocket, as it ends upstream's writer; a failed write does too.
    One frame is written at a time: aiohttp compresses a large frame in a task of its own,
    and a small one written meanwhile would go out first.
    """

    __slots__ = ("socket", "websocket", "transport", "task", "busy", "done")

    def __init__(self, socket: Any, websocket: CheckedWebSocket,
                 transport: asyncio.Transport) -> None:
        self.socket = socket
        self.websocket = websocket
        self.transport = transport
        self.task: asyncio.Task[None] | None = None
        self.busy = False  # a frame is being written, here or by the task
        self.done = False  # the WebSocket was closed: nothing more is written

    def wake(self) -> None:
        """Start writing the queue, unless a write is under way (it takes what came)."""
        if not self.busy and not self.done and not self.socket.queue.empty():
            self.busy = True
            self.task = asyncio.get_running_loop().create_task(self._write_queued())

    async def write_now(self, pkt: Any) -> bool:
        """Write ``pkt`` at once if nothing is being written, queued or buffered by the
        transport; False when it must be queued instead."""
        transport = self.transport
        if self.busy or self.done or not self.socket.queue.empty() \
                or transport.is_closing() or transport.get_write_buffer_size():
            return False
        self.busy = True
        try:
            await self.websocket.send(pkt.encode())  # aiohttp writes a frame without waiting
        except ConnectionResetError:  # the WebSocket is closing: the queue's writer ends it
            return False
        finally:
            self.busy = False
            self.wake()  # what was queued meanwhile
        return True

    async def _write_queued(self) -> None:
        try:
            if not await self._written():
                self.done = True
                await self.websocket.close()
        finally:
            self.busy = False
            self.task = None

    async def _written(self) -> bool:
        """Write the queued packets: True once none is left, False when a ``None`` or a
        failed write says to close."""
        queue = self.socket.queue
        try:
            while not queue.empty():
                pkt = queue.get_nowait()
                queue.task_done()
                if pkt is None:
                    return False
                await self.websocket.send(pkt.encode())
        except Exception:  # noqa: BLE001 - upstream's writer ends on any failed write too
            return False
        return True

    async def finish(self) -> None:
        """Close the WebSocket once what is queued before now is written."""
        self.socket.queue.put_nowait(None)
        if self.task is not None:
            await self.task


async def websocket_session(socket: Any, websocket: CheckedWebSocket) -> None:
    """``AsyncSocket._websocket_handler``: an Engine.IO socket's life on a WebSocket.

    The same steps as upstream's: the upgrade from long-polling (a probe, then UPGRADE),
    then reading packets until the WebSocket closes, then the socket closes. Frames larger
    than ``max_http_buffer_size`` never get here: the driver gives aiohttp that limit.

    Where it differs, for the memory every connection keeps and the CPU every frame costs:
    upstream awaits each frame in a task of its own under ``wait_for`` (a task per frame
    received, and a timer), where here the reader awaits it, with no timer: a client that
    stops answering is found by engine.io's monitor task, as its PING goes unanswered.
    Queued packets are written by a :class:`PacketWriter`, a task only while some wait,
    not a writer task for the connection's life. An upgrade must be done within
    ``ping_timeout`` (upstream waits for it forever).
    """
    server = socket.server
    request = websocket.environ["aiohttp.request"]
    if socket.connected:  # an upgrade from long-polling
        if not await _upgraded(socket, websocket):
            websocket.owner.websocket_closed(socket.sid)  # the client may try again
            return
    else:
        socket.connected = socket.upgraded = True
    writer = PacketWriter(socket, websocket, request.transport)
    socket.queue.writer = writer
    writer.wake()  # packets queued during the upgrade
    websocket.owner.websocket_ready(socket.sid)
    try:
        while True:
            try:
                data = await websocket.wait()
            except (Exception, asyncio.CancelledError):  # noqa: BLE001 - as upstream: the end
                break
            try:
                await socket.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:  # noqa: BLE001 - as upstream: logged, the connection goes on
                server.logger.exception("Unknown receive error")
    finally:  # cancelled or not (even twice), the socket ends with its WebSocket
        try:
            await writer.finish()
        finally:
            await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _upgraded(socket: Any, websocket: CheckedWebSocket) -> bool:
    """Upstream's upgrade of a long-polling socket: a PING "probe" answered with a PONG,
    the long-poll ended with a NOOP, then an UPGRADE, each within ``ping_timeout``. False
    when the client strays or is too slow."""
    socket.upgrading = True  # hold packet sends during the upgrade
    limit = socket.server.ping_timeout
    try:
        probe = eio_packet.Packet(encoded_packet=await websocket.wait(limit))
        if probe.packet_type != eio_packet.PING or probe.data != "probe":
            return False
        await websocket.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the long-poll
        upgrade = eio_packet.Packet(encoded_packet=await websocket.wait(limit))
        if upgrade.packet_type != eio_packet.UPGRADE:
            socket.upgraded = False
            return False
        socket.upgraded = True
        return True
    except (OSError, asyncio.TimeoutError):  # distinct before Python 3.11
        return False
    finally:
        socket.upgrading = False


async def send_now(socket: Any, writer: PacketWriter, pkt: Any) -> None:
    """``AsyncSocket.send`` for a signed-in WebSocket: written at once when it can be.

    engine.io queues every packet for the socket's writer task, which wakes to write it:
    a task switch per recipient of every message. When nothing is queued or being written,
    and the transport has nothing buffered, writing here keeps the order and costs no more.
    Otherwise the packet is queued as before: behind others, to a reader that falls behind
    (bounded by :class:`OutgoingQueue`), or to a closing connection, whose writer ends it.
    """
    if await socket.check_ping_timeout() and not await writer.write_now(pkt):
        socket.queue.put_nowait(pkt)


def ping_later(socket: Any) -> None:
    """``AsyncSocket.schedule_ping`` on a timer: ``ping_interval`` from now, send a PING.

    engine.io starts a task that sleeps ``ping_interval`` and then sends it: a task, two
    coroutines and a future that every connection holds nearly all the time (about
    0.9 KB). A timer waits the same; a task runs only to send. As upstream, one wait at
    a time (``last_ping`` is None while one runs), and none once the socket closes. A PING
    left unanswered for ``ping_timeout`` is found by engine.io's monitor task, which
    closes the socket (reason ``PING_TIMEOUT``).
    """
    if socket.last_ping:
        socket.last_ping = None
        asyncio.get_running_loop().call_later(socket.server.ping_interval, _ping, socket)


def _ping(socket: Any) -> None:
    if not socket.closing and not socket.closed:
        socket.last_ping = time.time()  # the clock check_ping_timeout reads
        socket.server.start_background_task(socket.send, eio_packet.Packet(eio_packet.PING))


async def long_poll(socket: Any) -> list[Any]:
    """``AsyncSocket.poll`` for a long-polling GET: at most :data:`MAX_POLL_PACKETS`, as
    upstream's returns them (``[]`` for a ``None``, which ends the transport).

    The rest stay queued for the client's next GET, which it sends at once.
    """
    queue = socket.queue
    timeout = socket.server.ping_interval + socket.server.ping_timeout
    try:
        first = await asyncio.wait_for(queue.get(), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        raise eio_exceptions.QueueEmpty() from None
    queue.task_done()
    if first is None:
        return []
    packets = [first]
    while not queue.empty() and len(packets) < MAX_POLL_PACKETS:
        pkt = queue.get_nowait()
        queue.task_done()
        if pkt is None:
            queue.put_nowait(None)  # the transport ends after these
            break
        packets.append(pkt)
    return packets


def tune(kept: EngineSocket) -> None:
    """Give a signed-in Engine.IO socket on a WebSocket the writes at once of :func:`send_now`."""
    writer = kept.socket.queue.writer
    if writer is not None:
        kept.socket.send = functools.partial(send_now, kept.socket, writer)


async def close_now(socket: Any, *, send_close: bool = False) -> None:
    """Close an Engine.IO socket now, whether or not its client cooperates.

    Its disconnect handlers run at once; ``send_close`` queues Engine.IO's CLOSE first.
    ``None`` then wakes the transport's writer (or a waiting long-poll), which ends it.
    """
    await socket.close(wait=False, abort=not send_close)
    socket.queue.put_nowait(None)


async def close_transports(sio: socketio.AsyncServer) -> None:
    """Close every Engine.IO socket of ``sio`` as a server going away does."""
    for socket in list(sio.eio.sockets.values()):
        await close_now(socket)


def is_connected(sio: socketio.AsyncServer, sid: str) -> bool:
    """True from the moment python-socketio has accepted ``sid``'s connect (after its
    connect handler returned) until the connection ends."""
    return bool(sio.manager.is_connected(sid, NAMESPACE))


def is_handshake(query_string: str) -> bool:
    """True when engine.io takes a request with this query for a new socket: it has no
    ``sid`` as engine.io parses it (``parse_qs``, to which an empty ``sid=`` is none).

    Parsed here and dropped, not through ``request.query``, which the request would keep
    (with a WebSocket's, for hours).
    """
    return "sid" not in parse_qs(query_string)


class Gate(Protocol):
    """What stands between the fan-out and one connection (see :meth:`FanOutManager.gate`)."""

    def passes(self, event: str, data: Any) -> bool:
        """True to send ``event`` to the connection now; False when the gate kept or dropped it."""


class FanOutManager(socketio.AsyncManager):  # type: ignore[misc]
    """The single-process manager, whose ``emit`` without callbacks queues in turn.

    python-socketio's manager sends to each recipient in a task of its own, then waits
    for them all. Handing a packet to a connection only puts it on that connection's
    queue, so doing it in turn is equivalent, keeps order, and costs a fraction of the
    CPU at chat fan-out (10 connections a user).

    A connection may have a :class:`Gate` (:meth:`gate`): what is emitted to it passes
    only through the gate, which may hold it back (a connection catching up on the
    messages it missed gets them before any live one: :mod:`roomz.server.replay`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gates: dict[str, Gate] = {}

    def gate(self, sid: str, gate: Gate) -> None:
        """From now on, emits to ``sid`` go through ``gate`` (until :meth:`ungate`)."""
        self._gates[sid] = gate

    def ungate(self, sid: str) -> None:
        """Emits to ``sid`` go straight to it again."""
        self._gates.pop(sid, None)

    async def send_to(self, sid: str, event: str, data: Any, namespace: str = NAMESPACE) -> None:
        """Send ``event`` to the connection ``sid`` alone, past its gate."""
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        if eio_sid is not None:
            for p in self._packets(event, data, namespace):
                await self.server.eio.send_packet(eio_sid, p)

    def _packets(self, event: str, data: Any, namespace: str) -> list[Any]:
        """The Engine.IO packets carrying ``event``, encoded once for every recipient."""
        args = [] if data is None else [data]
        encoded = self.server.packet_class(packet.EVENT, namespace=namespace,
                                           data=[event, *args]).encode()
        return [eio_packet.Packet(eio_packet.MESSAGE, p)
                for p in (encoded if isinstance(encoded, list) else [encoded])]

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> None:
        """Send ``event`` to ``room`` (or ``to``) except ``skip_sid``, as AsyncManager does."""
        if callback is not None or isinstance(data, tuple):
            await super().emit(event, data, namespace, room=room,
                               skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return
        if namespace not in self.get_namespaces():
            return
        eio_packets = self._packets(event, data, namespace)
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        send = self.server.eio.send_packet
        gates = self._gates
        for sid, eio_sid in self.get_participants(namespace, to or room):
            if sid not in skip and (not gates or sid not in gates
                                    or gates[sid].passes(event, data)):
                for p in eio_packets:
                    await send(eio_sid, p)


class WirePacket(packet.Packet):  # type: ignore[misc]
    """python-socketio's packet with JSON by :mod:`.wire_json`, and no search for bytes in
    what it sends (the protocol has none). Given to the server as its ``serializer``."""

    json = wire_json
    uses_binary_events = False


def raise_payload_limit() -> None:
    """Let a long-polling POST carry up to :data:`MAX_PAYLOAD_PACKETS` packets (process-wide)."""
    if eio_payload.Payload.max_decode_packets < MAX_PAYLOAD_PACKETS:
        eio_payload.Payload.max_decode_packets = MAX_PAYLOAD_PACKETS


@dataclass(slots=True, eq=False)
class EngineSocket:
    """What the server keeps about one Engine.IO socket while it is open."""

    socket: Any
    remote: str  # the client's address, for log lines
    key: str  # what the per-address limit counts it as (:func:`.addresses.limit_key`)
    deadline: asyncio.TimerHandle | None = None  # to sign in, while it is not signed in
    websocket: web.Request | None = None  # the WebSocket's own request, once there is one
    unfinished: bool = True  # counted among its address's sockets not yet signed in
    was_signed_in: bool = False
    closing: bool = False
    refused: bool = False  # closed for a bad packet


class RequestEnviron(Mapping[str, Any]):
    """The environ engine.io's aiohttp driver makes of a request, read from the request as
    asked instead of copied: the same keys and values as the driver's ``translate_request``.

    engine.io and python-socketio keep a socket's environ for its life (its WebSocket's
    request too); the driver's is a dict with a copy of every header under an ``HTTP_*``
    name, about 2 KB per connection. This one holds the request alone.
    """

    __slots__ = ("request",)

    #: The entries that are not headers, as the driver computes them.
    FIXED: dict[str, Callable[[web.Request], Any]] = {
        "wsgi.input": lambda r: r.content,
        "wsgi.errors": lambda r: sys.stderr,
        "wsgi.version": lambda r: (1, 0),
        "wsgi.async": lambda r: True,
        "wsgi.multithread": lambda r: False,
        "wsgi.multiprocess": lambda r: False,
        "wsgi.run_once": lambda r: False,
        "SERVER_SOFTWARE": lambda r: "aiohttp",
        "REQUEST_METHOD": lambda r: r.method,
        "QUERY_STRING": lambda r: r.query_string or "",
        "RAW_URI": lambda r: r.path_qs,
        "SERVER_PROTOCOL": lambda r: f"HTTP/{r.version[0]}.{r.version[1]}",
        "REMOTE_ADDR": lambda r: "127.0.0.1",
        "REMOTE_PORT": lambda r: "0",
        "SERVER_NAME": lambda r: "aiohttp",
        "SERVER_PORT": lambda r: "0",
        "aiohttp.request": lambda r: r,
        "PATH_INFO": lambda r: r.path,
        "SCRIPT_NAME": lambda r: "",
    }

    def __init__(self, request: web.Request) -> None:
        self.request = request

    def _headers(self) -> Iterator[tuple[str, str]]:
        """Each header as the driver names it: ``CONTENT_TYPE``, ``CONTENT_LENGTH``, else
        ``HTTP_`` and its name upper-cased with ``_`` for ``-``."""
        for name, value in self.request.headers.items():
            name = name.upper().replace("-", "_")
            yield (name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name), value

    def __getitem__(self, key: str) -> Any:
        if key in self.FIXED:
            return self.FIXED[key](self.request)
        if key == "wsgi.url_scheme":
            return self.get("HTTP_X_FORWARDED_PROTO", "http")
        values = [value for name, value in self._headers() if name == key]
        if not values:
            raise KeyError(key)
        # Repeated headers: joined with commas, but the last content type or length wins.
        return ",".join(values) if key.startswith("HTTP_") else values[-1]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self.FIXED), "wsgi.url_scheme": None,
                     **dict.fromkeys(name for name, _ in self._headers())})

    def __len__(self) -> int:
        return sum(1 for _ in self)


async def _answer(response: web.Response) -> web.Response:
    """``response``, for engine.io to await where it awaits the driver."""
    return response


class CheckedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp WebSocket, refusing bad frames and known to its :class:`SocketServer`."""

    def __init__(self, handler: Any, server: Any, *, owner: SocketServer) -> None:
        socket = handler.__self__  # handler: the socket's _websocket_handler
        super().__init__(functools.partial(websocket_session, socket), server)
        self.owner = owner
        self.eio_sid: str = socket.sid

    def __call__(self, environ: Mapping[str, Any]) -> Any:
        """Open the WebSocket for its Engine.IO socket, as engine.io's driver does.

        Not a coroutine of its own: engine.io awaits what it returns, and a frame here
        would be kept for the WebSocket's whole life (a few hundred bytes each).
        """
        request = environ["aiohttp.request"]
        if not self.owner.websocket_opened(self.eio_sid, request):
            return _answer(problem(400, "websocket-open", "Bad Request",
                                   "This connection has a WebSocket already", request.path))
        return super().__call__(environ)

    async def send(self, message: str | bytes) -> None:
        """Send one frame, as the driver's ``send`` does, minus its per-call inspection."""
        if isinstance(message, str):
            await self._sock.send_str(message)
        else:
            await self._sock.send_bytes(message)

    async def wait(self, timeout: float | None = None) -> Any:
        """The next frame; a bad one closes the socket and ends the session's reader
        (OSError), as does none within ``timeout`` seconds (``asyncio.TimeoutError``).

        Read as the driver's ``wait`` reads it, not through it: the reader waits here for
        the WebSocket's whole life, and each coroutine in that chain keeps its frame.
        """
        data = (await self._sock.receive(timeout)).data
        if not isinstance(data, (str, bytes)):  # closed, or an error: the reader ends
            raise OSError()
        problem = engine_packet_problem(data)
        if problem is not None:
            await self.owner.refuse(self.eio_sid, problem, data)
            raise OSError(str(problem))
        return data


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server with the bounds a server on the internet needs.

    - An Engine.IO socket that has no Socket.IO connection ``connect_timeout`` seconds
      after it opens (or after it left its namespace) is closed; one whose connect is
      still being decided (the stores answer slowly) gets another ``connect_timeout``.
    - At most ``max_connections`` Engine.IO sockets: a new handshake beyond is answered 503.
    - At most ``max_unfinished_per_address`` sockets not yet signed in per client address
      (``addresses`` says whose a request is): a new handshake beyond is answered 503.
    - At most ``max_queued_events`` packets wait for one connection; a reader that falls
      that far behind is disconnected (its TCP connection reset).
    - Bad packets and binary ones close their connection with one :class:`QuietLog` line.
      Packets a signed-in client sent before it heard that the server ended its connection
      (a logout, say) are dropped without a word.

    ``name_of`` says who a Socket.IO connection (by sid) is, for those log lines.
    """

    def __init__(self, *, connect_timeout: float, max_connections: int,
                 max_queued_events: int, max_unfinished_per_address: int,
                 addresses: ClientAddresses, **options: Any) -> None:
        super().__init__(**options)
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.max_queued_events = max_queued_events
        self.max_unfinished_per_address = max_unfinished_per_address
        self.addresses = addresses
        self.name_of: Callable[[str], str | None] = lambda sid: None
        self.quiet = QuietLog(log)
        self.engine_sockets: dict[str, EngineSocket] = {}
        #: Sockets not yet signed in, per client address (its :func:`limit_key`).
        self.unfinished: Counter[str] = Counter()
        self._closing: set[asyncio.Task[None]] = set()
        self.eio._async = {**self.eio._async, "translate_request": RequestEnviron,
                           "websocket": functools.partial(CheckedWebSocket, owner=self)}
        raise_payload_limit()

    def attach(self, app: web.Application, socketio_path: str = "socket.io") -> None:
        """Serve Socket.IO on ``app`` at ``/socket.io/``, refusing handshakes beyond the caps."""
        path = f"/{socketio_path.strip('/')}/"
        app.router.add_get(path, self._handle_request)
        app.router.add_post(path, self._handle_request)
        app.router.add_route("OPTIONS", path, self._handle_request)

    async def _handle_request(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and is_handshake(request.query_string):
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        try:
            response: web.StreamResponse = await self.eio.handle_request(request)
        except ConnectionResetError:
            # The client left before its answer was written (a cut link): aiohttp would log
            # a traceback (aiohttp#3966). Its socket goes now, not at connect_timeout.
            log.debug("a client from %s left before its answer was written",
                      self.addresses.client_address(request))
            self._drop_websocket(request)
            return web.Response()  # written to the closed connection: aiohttp drops it quietly
        return response

    def _drop_websocket(self, request: web.Request) -> None:
        """Close the Engine.IO socket whose WebSocket ``request`` was meant to carry."""
        kept = next((k for k in self.engine_sockets.values() if k.websocket is request), None)
        if kept is not None:
            self._close_soon(kept.socket.sid)

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The 503 for a new Engine.IO handshake beyond a cap, or None to let it in."""
        if self.is_full():
            self.quiet.warning("server full", "refused a new connection: server full "
                                              "(%d connections)", len(self.engine_sockets))
            return problem(503, "server-full", "Service Unavailable",
                           f"Server full: {self.max_connections} connections; try again later",
                           request.path, headers={"Retry-After": "5"})
        key = limit_key(self.addresses.client_address(request))
        if self.unfinished[key] < self.max_unfinished_per_address:
            return None
        self.quiet.warning("unfinished per address", "refused a new connection from %s: %d "
                           "of its connections have not signed in", key, self.unfinished[key])
        return problem(503, "too-many-unfinished", "Service Unavailable",
                       f"Too many connections from your address have not signed in (at most "
                       f"{self.max_unfinished_per_address}); sign in on those or try again "
                       "later", request.path, headers={"Retry-After": "5"})

    def is_full(self) -> bool:
        """True when a new Engine.IO handshake must be refused.

        Every open socket counts, signed in or not. When all ``max_connections`` are signed
        in, one more may open at a time: PROTOCOL.md has a full server refuse the Socket.IO
        connect ("Server full", CONNECT_ERROR), which needs an Engine.IO socket to say it on.
        """
        open_now = len(self.engine_sockets)
        if open_now < self.max_connections:
            return False
        return open_now > self.max_connections or not all(
            self.is_signed_in(eio_sid) for eio_sid in self.engine_sockets)

    # Engine.IO sockets opening and closing

    async def _handle_eio_connect(self, eio_sid: str, environ: Mapping[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        socket = self.eio.sockets[eio_sid]
        request = environ.get("aiohttp.request")
        remote = self.addresses.client_address(request) if request is not None else "unknown"
        kept = self.engine_sockets[eio_sid] = EngineSocket(socket, remote, limit_key(remote))
        self.unfinished[kept.key] += 1
        queue = OutgoingQueue(self.max_queued_events,
                              on_full=functools.partial(self._too_slow, eio_sid))
        queue.take_over(socket.queue)
        socket.queue = queue
        socket.poll = long_poll.__get__(socket)
        socket.schedule_ping = ping_later.__get__(socket)
        socket.handle_post_request = functools.partial(
            self._receive_payload, eio_sid, socket.handle_post_request)
        self._start_deadline(kept)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        kept = self.engine_sockets.pop(eio_sid, None)
        if kept is not None:
            self._stop_deadline(kept)
            self._finished(kept)
            if reason == self.reason.PING_TIMEOUT and kept.websocket is not None \
                    and kept.websocket.transport is not None:
                # A client that no longer answers may not read either: a polite close
                # would wait on it forever, with its writer stuck on a full buffer.
                kept.websocket.transport.abort()
        await super()._handle_eio_disconnect(eio_sid, reason)
        if kept is not None:
            # Once close() has queued its last packet, wake a waiting long-poll (or writer):
            # engine.io's async close leaves it waiting ping_interval + ping_timeout.
            asyncio.get_running_loop().call_soon(kept.socket.queue.put_nowait, None)

    def websocket_opened(self, eio_sid: str, request: web.Request) -> bool:
        """Remember the request carrying a socket's WebSocket, to reset it if need be;
        False when the socket has one already (engine.io would let a second one in while
        the first upgrades, and write to one while checking the other)."""
        kept = self.engine_sockets.get(eio_sid)
        if kept is None:
            return True
        if kept.websocket is not None:
            return False
        kept.websocket = request
        return True

    def websocket_closed(self, eio_sid: str) -> None:
        """The socket's WebSocket ended without taking over (a failed upgrade)."""
        kept = self.engine_sockets.get(eio_sid)
        if kept is not None:
            kept.websocket = None

    def websocket_ready(self, eio_sid: str) -> None:
        """A socket's WebSocket carries its packets now: one signed in over long-polling
        before it upgraded gets the writes at once that signing in gives (:func:`tune`)."""
        kept = self.engine_sockets.get(eio_sid)
        if kept is not None and kept.was_signed_in and self.is_signed_in(eio_sid):
            tune(kept)

    def is_signed_in(self, eio_sid: str) -> bool:
        """True when the Engine.IO socket carries an accepted Socket.IO connection."""
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        return sid is not None and is_connected(self, sid)

    def _finished(self, kept: EngineSocket) -> None:
        """Stop counting ``kept`` among its address's sockets not yet signed in."""
        if kept.unfinished:
            kept.unfinished = False
            self.unfinished[kept.key] -= 1
            if self.unfinished[kept.key] <= 0:
                del self.unfinished[kept.key]

    def _start_deadline(self, kept: EngineSocket) -> None:
        self._stop_deadline(kept)
        kept.deadline = asyncio.get_running_loop().call_later(
            self.connect_timeout, self._check_signed_in, kept.socket.sid)

    @staticmethod
    def _stop_deadline(kept: EngineSocket) -> None:
        if kept.deadline is not None:
            kept.deadline.cancel()
            kept.deadline = None

    def _check_signed_in(self, eio_sid: str) -> None:
        kept = self.engine_sockets.get(eio_sid)
        if kept is None or kept.closing:
            return
        kept.deadline = None
        if self.is_signed_in(eio_sid):
            return
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        if sid is not None and self.manager.is_pre_connected(sid, NAMESPACE):
            # Its connect waits on the stores, whose own timeouts bound the wait: closing
            # now would leave that connect to finish on a socket that is gone.
            self._start_deadline(kept)
            return
        self.quiet.warning("unfinished connection", "closed a connection from %s: not signed "
                                                    "in within %g s", kept.remote,
                           self.connect_timeout)
        self._close_soon(eio_sid, send_close=True)

    def _too_slow(self, eio_sid: str) -> None:
        self.quiet.warning("slow reader", "disconnected %s: %d events were waiting to be sent "
                                          "to it; it reads too slowly", self._who(eio_sid),
                           self.max_queued_events)
        self._close_soon(eio_sid, reset=True)

    def _who(self, eio_sid: str) -> str:
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        name = self.name_of(sid) if sid is not None else None
        if name is not None:
            return name
        kept = self.engine_sockets.get(eio_sid)
        return f"a connection from {kept.remote if kept else None} (not signed in)"

    # Closing

    def drop(self, sid: str) -> None:
        """Close the connection ``sid`` as a broken link closes it (its TCP connection
        reset): its client reconnects, and resumes where it stands in the history."""
        eio_sid = self.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is not None:
            self._close_soon(eio_sid, reset=True)

    def _close_soon(self, eio_sid: str, *, send_close: bool = False, reset: bool = False) -> None:
        kept = self.engine_sockets.get(eio_sid)
        if kept is None or kept.closing:
            return
        kept.closing = True  # from now on nothing it sends is handled
        task = asyncio.get_running_loop().create_task(self._close(kept, send_close, reset))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, kept: EngineSocket, send_close: bool, reset: bool) -> None:
        kept.closing = True
        if reset and kept.websocket is not None and kept.websocket.transport is not None:
            # The peer may not read: a polite close would wait on it forever.
            kept.websocket.transport.abort()
        await close_now(kept.socket, send_close=send_close)

    async def refuse(self, eio_sid: str, bad: BadPacket, data: Any = None) -> None:
        """Close a connection that sent a bad packet, with one quiet line naming it."""
        kept = self.engine_sockets.get(eio_sid)
        if kept is None or kept.closing:
            return
        kept.refused = True
        kind = "binary packet" if bad.binary else "bad packet"
        self.quiet.warning(kind, "closed %s: it sent %s%s", self._who(eio_sid), bad,
                           "" if data is None else f": {shown(data)}")
        await self._close(kept, send_close=False, reset=True)

    # Namespaces ending

    async def disconnect(self, sid: str, namespace: str | None = None,
                         ignore_queue: bool = False) -> None:
        """End a Socket.IO connection (python-socketio's ``disconnect``); its socket gets a
        deadline to sign in again."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or NAMESPACE)
        await super().disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)
        if eio_sid is not None:
            self._left_namespace(eio_sid)

    async def _handle_disconnect(self, eio_sid: str, namespace: str,
                                 reason: Any = None) -> None:
        await super()._handle_disconnect(eio_sid, namespace, reason)
        self._left_namespace(eio_sid)

    def _left_namespace(self, eio_sid: str) -> None:
        kept = self.engine_sockets.get(eio_sid)
        if kept is not None and not kept.closing and kept.deadline is None \
                and not self.is_signed_in(eio_sid):
            self._start_deadline(kept)

    # What clients send

    async def _receive_payload(self, eio_sid: str, receive: Callable[[Any], Any],
                               environ: Mapping[str, Any]) -> None:
        """``AsyncSocket.handle_post_request``, closing the socket when the payload is bad.

        Raising ``EngineIOError`` has engine.io answer 400; the socket is closed first, or
        engine.io's own disconnect would wait for a poll that may never come.
        """
        kept = self.engine_sockets.get(eio_sid)
        if kept is None:
            return
        try:
            await receive(environ)
        except eio_exceptions.ContentTooLongError:
            await self._close(kept, send_close=False, reset=False)
            raise
        except (ValueError, LookupError, TypeError, RecursionError,
                eio_exceptions.UnknownPacketError):
            await self.refuse(eio_sid, BadPacket(
                f"a long-polling payload that does not decode (or holds more than "
                f"{MAX_PAYLOAD_PACKETS} packets)"))
            raise eio_exceptions.EngineIOError() from None
        if kept.refused:  # a packet in it was refused: say so rather than "ok"
            raise eio_exceptions.EngineIOError()

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        kept = self.engine_sockets.get(eio_sid)
        if kept is None or kept.closing:
            return  # a packet after a bad one in the same long-polling payload
        try:
            pkt = decode_packet(self, data)
            namespace = pkt.namespace or NAMESPACE
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            connected = sid is not None and self.manager.is_connected(sid, namespace)
            connecting = pkt.packet_type == packet.CONNECT
            if not connected and not connecting and kept.was_signed_in:
                return  # sent before it heard the server end its connection: not hostile
            if connected == connecting:
                raise BadPacket("a CONNECT while connected" if connected
                                else "a packet before connecting")
        except BadPacket as bad:
            await self.refuse(eio_sid, bad, data)
            return
        if connecting:
            await self._connect(kept, namespace, pkt.data)
        elif pkt.packet_type == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.packet_type == packet.EVENT:
            await self._handle_event(eio_sid, namespace, pkt.id, pkt.data)
        else:
            await self._handle_ack(eio_sid, namespace, pkt.id, pkt.data)

    async def _connect(self, kept: EngineSocket, namespace: str, auth: Any) -> None:
        """Handle a CONNECT; a socket that closed while it was decided is disconnected."""
        eio_sid = kept.socket.sid
        await self._handle_connect(eio_sid, namespace, auth)
        if self.engine_sockets.get(eio_sid) is not kept:
            # Closed meanwhile: its disconnect found no connection to end, as it was not
            # accepted yet; end it now, or it would stay counted forever.
            await self._handle_disconnect(eio_sid, namespace, self.reason.TRANSPORT_CLOSE)
        elif self.is_signed_in(eio_sid):
            kept.was_signed_in = True
            self._stop_deadline(kept)
            self._finished(kept)
            tune(kept)
