"""A loopback TCP proxy for fault tests: a network that can go silent, and a load balancer.

``TcpProxy([port])`` forwards every connection to ``port``; ``cut()`` ends them all at
once, as a broken link does. ``blackhole()`` stops moving
bytes in both directions without closing anything, as a dead link or a dropped route
does: what is sent meanwhile waits, as TCP's retransmissions would, and ``restore()``
lets it through (a connection whose far end gave up meanwhile then ends). ``deafen()``
holds only what the upstream says (acknowledgements lost on their way back), until
``restore()`` or a ``cut()``; ``deafen_after(marker)`` does so once a client sends the marker.
``corrupt(old, new)`` changes what clients send, as a bad link could.
``TcpProxy([port2, port1])`` routes each *new* connection to the first upstream that
accepts it: a load balancer in front of two nodes. ``LostReplies`` loses one reply.
``BusProxy`` holds or cuts a node's subscription to Redis's message bus alone.
"""

from __future__ import annotations

import asyncio
import contextlib

CHUNK = 65536
UPSTREAM_CONNECT_SECONDS = 1.0


class TcpProxy:
    """A TCP proxy on 127.0.0.1 with a blackhole switch and first-live-upstream routing."""

    def __init__(self, upstream_ports: list[int]) -> None:
        self.upstream_ports = list(upstream_ports)
        #: The upstream port each accepted connection went to (None: none would take it).
        self.routed: list[int | None] = []
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._hearing = asyncio.Event()  # what the upstream says is forwarded
        self._hearing.set()
        self._deafen_marker: bytes | None = None
        #: Set once :meth:`deafen_after`'s marker went by and the proxy went deaf.
        self.deafened = asyncio.Event()
        self._corruption: tuple[bytes, bytes] | None = None
        #: How many times :meth:`corrupt` changed what a client sent.
        self.corrupted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    @property
    def port(self) -> int:
        """The port clients connect to."""
        assert self._server is not None, "the proxy is not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the server URL clients use through the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        """Stop forwarding bytes, both ways, on every connection; close nothing."""
        self._flowing.clear()

    def deafen(self) -> None:
        """Stop forwarding what the upstream sends, on every connection; what clients send
        still goes through."""
        self._hearing.clear()

    def deafen_after(self, marker: bytes) -> None:
        """:meth:`deafen` as soon as a client sends bytes holding ``marker``, once: that
        request goes through and its answer, with all after it, is held until :meth:`restore`.
        The marker must come whole in one read (a short request over plain HTTP)."""
        self._deafen_marker = marker
        self.deafened.clear()

    def corrupt(self, old: bytes, new: bytes) -> None:
        """From now on, replace ``old`` by ``new`` (as long: an HTTP body keeps its length)
        in what clients send, wherever it comes whole in one read."""
        assert len(old) == len(new), "a corruption keeps the length"
        self._corruption = (old, new)

    def restore(self) -> None:
        """Forward again: held bytes (and held ends of connections) go through."""
        self._flowing.set()
        self._hearing.set()

    def cut(self) -> None:
        """End every connection now, both ends at once, as a link that breaks does; new
        connections still go through (unless the proxy is in :meth:`blackhole`)."""
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening and close every connection (each one's task aborts both ends)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int] | None:
        for port in self.upstream_ports:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), UPSTREAM_CONNECT_SECONDS)
            except (OSError, asyncio.TimeoutError):
                continue  # not live: try the next one
            return reader, writer, port
        return None

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream = await self._open_upstream()
            self.routed.append(upstream[2] if upstream else None)
            if upstream is None:
                return
            up_reader, up_writer, _ = upstream
            link = (client_writer, up_writer)
            self._links.add(link)
            try:
                await asyncio.gather(self._pump(client_reader, up_writer, watch=True),
                                     self._pump(up_reader, client_writer, self._hearing))
            finally:
                self._links.discard(link)
                up_writer.transport.abort()
        finally:
            client_writer.transport.abort()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    hearing: asyncio.Event | None = None, watch: bool = False) -> None:
        """Copy one direction (held also while ``hearing`` is clear; ``watch``: the client's,
        where :meth:`deafen_after` and :meth:`corrupt` look); when it ends, end the other
        direction's writer too."""
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(CHUNK)
                await self._flowing.wait()  # read as the blackhole began: hold it
                if hearing is not None:
                    await hearing.wait()
                    await self._flowing.wait()
                if watch:
                    data = self._watched(data)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:  # the other end went away: so does this direction
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.transport.abort()

    def _watched(self, data: bytes) -> bytes:
        """What a client sent, as corrupted; deafens on :meth:`deafen_after`'s marker."""
        if self._deafen_marker is not None and self._deafen_marker in data:
            self._deafen_marker = None
            self.deafen()
            self.deafened.set()
        if self._corruption is not None and self._corruption[0] in data:
            self.corrupted += data.count(self._corruption[0])
            data = data.replace(*self._corruption)
        return data


class LostReplies:
    """A loopback proxy in front of Redis that, once armed with a marker, lets the next
    command holding it reach Redis, then drops its reply with the connection: a link cut
    between Redis running a command and the node hearing its answer."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.marker: bytes | None = None
        self.then_refuse = False
        self.swallow = False
        self.refusing = False
        self.dropped = asyncio.Event()
        self._server: asyncio.Server | None = None

    def arm(self, marker: bytes, *, then_refuse: bool = False, swallow: bool = False) -> None:
        """Drop the reply to the next command that holds ``marker``; ``then_refuse``: and
        refuse new connections from then on, until :meth:`restore` (the node is cut off
        from Redis, so its client's retry fails too); ``swallow``: the command itself is
        lost too (it never reaches Redis)."""
        self.marker = marker
        self.then_refuse = then_refuse
        self.swallow = swallow
        self.dropped.clear()

    def restore(self) -> None:
        """Take new connections again."""
        self.refusing = False

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _link(self, client_in: asyncio.StreamReader,
                    client_out: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_out.transport.abort()
            return
        redis_in, redis_out = await asyncio.open_connection("127.0.0.1", self.redis_port)
        cut = asyncio.Event()

        async def up() -> None:
            while data := await client_in.read(65536):
                if self.marker is not None and self.marker in data:
                    self.marker = None
                    self.refusing = self.then_refuse
                    cut.set()  # Redis runs it; its reply, read below, is not passed on
                    self.dropped.set()
                    if self.swallow:
                        return  # nor does Redis get it
                redis_out.write(data)
                await redis_out.drain()

        async def down() -> None:  # ends with the first reply after the cut
            while (data := await redis_in.read(65536)) and not cut.is_set():
                client_out.write(data)
                await client_out.drain()

        tasks = {asyncio.ensure_future(up()), asyncio.ensure_future(down())}
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        client_out.close()
        redis_out.close()



class BusProxy:
    """A loopback proxy in front of Redis that tells the message bus's connections (those
    that sent SUBSCRIBE) from the others. ``hold()`` holds what Redis sends them;
    ``release()`` lets it through; ``cut()`` ends them, what was held lost, while Redis and
    the node's other connections stay up (as when Redis drops a subscriber that reads
    too slowly)."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._buses: set[asyncio.StreamWriter] = set()  # the node ends of bus connections
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The Redis URL a node uses through the proxy."""
        assert self._server is not None, "the proxy is not started"
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def hold(self) -> None:
        """Hold what Redis sends the bus connections."""
        self._flowing.clear()

    def release(self) -> None:
        """Let it through again."""
        self._flowing.set()

    def cut(self) -> None:
        """End the bus connections now; what they held is lost."""
        for writer in list(self._buses):
            writer.transport.abort()
        self._flowing.set()

    async def __aenter__(self) -> BusProxy:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._buses):
            writer.transport.abort()

    async def _link(self, node_in: asyncio.StreamReader,
                    node_out: asyncio.StreamWriter) -> None:
        redis_in, redis_out = await asyncio.open_connection("127.0.0.1", self.redis_port)
        bus = False

        async def up() -> None:
            nonlocal bus
            while data := await node_in.read(CHUNK):  # an abort ends it with an OSError
                if b"SUBSCRIBE" in data.upper():
                    bus = True
                    self._buses.add(node_out)
                redis_out.write(data)
                await redis_out.drain()

        async def down() -> None:
            while data := await redis_in.read(CHUNK):
                if bus:
                    await self._flowing.wait()
                    if node_out.transport.is_closing():
                        return  # cut while held: what was held is lost
                node_out.write(data)
                await node_out.drain()

        tasks = {asyncio.ensure_future(up()), asyncio.ensure_future(down())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # an aborted end's OSError
            self._buses.discard(node_out)
            node_out.transport.abort()
            redis_out.transport.abort()
