"""A cap on the TCP connections one client address may hold open with no request in progress.

An idle connection costs the server a file descriptor and does nothing: it has not finished
its first request head yet, or it waits between keep-alive requests. (A WebSocket or a
long-polling request keeps its connection busy.) One address may hold ``cap`` idle
connections: a new connection beyond that is closed at once, and one that would become
idle beyond it is closed after its answer. Trusted proxies carry many clients' requests,
so they are exempt. An IPv6 address counts as its /64 network (:func:`.addresses.limit_key`).

:func:`listen` accepts connections through :class:`IdleConnections` in front of the aiohttp
runner's protocol factory (``web.Server``, which aiohttp documents as a protocol factory for
``loop.create_server``); :meth:`IdleConnections.middleware` marks a connection busy while
one of its requests is handled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from .addresses import limit_key
from .quiet_log import QuietLog

log = logging.getLogger("roomz.server")

BACKLOG = 128  # aiohttp's own TCPSite default


@dataclass(slots=True)
class _Connection:
    address: str
    busy: bool = False


class IdleConnections:
    """Counts each client address's idle connections and refuses those beyond ``cap``;
    addresses for which ``exempt`` is true are not counted."""

    def __init__(self, cap: int, exempt: Callable[[str], bool]) -> None:
        self.cap = cap
        self.exempt = exempt
        self.idle: Counter[str] = Counter()
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        self.quiet = QuietLog(log)

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection as idle, or return False when its address holds the cap."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, (tuple, list)) else None
        if address is None or self.exempt(address):
            return True
        key = limit_key(address)
        if self.idle[key] >= self.cap:
            self.quiet.warning("idle-cap", "closed a new connection from %s: it already holds "
                               "%d idle connections", key, self.cap)
            return False
        self._connections[transport] = _Connection(key)
        self._count(key, +1)
        return True

    def closed(self, transport: asyncio.BaseTransport) -> None:
        """Forget a connection that has ended."""
        connection = self._connections.pop(transport, None)
        if connection is not None and not connection.busy:
            self._count(connection.address, -1)

    def _count(self, address: str, change: int) -> None:
        self.idle[address] += change
        if self.idle[address] <= 0:
            del self.idle[address]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The request's connection is busy while ``handler`` runs, idle again after."""
        transport = request.transport
        connection = self._connections.get(transport) if transport is not None else None
        if transport is None or connection is None:
            return await handler(request)
        connection.busy = True
        self._count(connection.address, -1)
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            return response
        finally:
            if self._connections.get(transport) is connection:  # still open
                connection.busy = False
                self._count(connection.address, +1)
                if response is not None and self.idle[connection.address] > self.cap:
                    response.force_close()  # rather than wait idle beyond the cap


class _Guard(asyncio.Protocol):
    """One accepted connection: admitted by :class:`IdleConnections`, then served by the
    protocol ``serve()`` makes, to which every event is passed on."""

    __slots__ = ("connections", "serve", "transport", "inner")  # one per open connection

    def __init__(self, connections: IdleConnections, serve: Callable[[], asyncio.Protocol]
                 ) -> None:
        self.connections = connections
        self.serve = serve
        self.transport: asyncio.BaseTransport | None = None
        self.inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.connections.admit(transport):
            transport.close()
            return
        self.transport = transport
        self.inner = self.serve()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None and self.transport is not None:
            self.connections.closed(self.transport)
            self.inner.connection_lost(exc)


async def listen(runner: web.AppRunner, host: str, port: int,
                 connections: IdleConnections) -> asyncio.Server:
    """Accept TCP connections on ``host:port`` for ``runner``'s application (set up already),
    each admitted by ``connections`` first."""
    serve = runner.server
    if serve is None:
        raise RuntimeError("call runner.setup() before listen()")
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Guard(connections, serve), host, port,
                                    backlog=BACKLOG)
