"""Clients that never finish: request heads sent a line at a time, bodies trickled byte by
byte, bodies announced too big, and more idle connections than one address needs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp

from roomz.server.local import LocalServer
from tests.server.helpers import assert_problem
from tests.server.proc import ServerProcess
from tests.waiting import wait_until

from .hostile_clients import polling_session

SLACK = 5.0  # seconds beyond a timeout that a busy machine may need to act on it
POLLING = "/socket.io/?EIO=4&transport=polling"
HEAD = "Host: roomz\r\n"
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def raw(url: str, local: str = "127.0.0.1") -> AsyncIterator[Streams]:
    """A raw TCP connection to the server at ``url``, from the local address ``local``."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    streams = await asyncio.wait_for(
        asyncio.open_connection(host, int(port), local_addr=(local, 0)), 5)
    try:
        yield streams
    finally:
        streams[1].close()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection within ``seconds`` (reading what comes)."""
    deadline = time.monotonic() + seconds
    try:
        while await asyncio.wait_for(reader.read(65536), max(0.0, deadline - time.monotonic())):
            pass
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def response_head(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict[str, str]]:
    """The status and headers of the next HTTP response."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}


async def response(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes]:
    """The status and body of the next HTTP response (with a Content-Length)."""
    status, headers = await response_head(reader, timeout)
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
    return status, body


# Request heads sent slowly

async def test_request_heads_sent_a_line_a_second_are_cut_off() -> None:
    """200 connections each sending one header line a second are all closed within the
    header timeout (plus slack), though every one of them keeps sending."""
    header_timeout = 2.0
    async with LocalServer(header_timeout=header_timeout,
                           max_idle_connections_per_address=1000) as server:
        async def slow_head() -> float:
            async with raw(server.url) as (reader, writer):
                started = time.monotonic()
                writer.write(b"GET / HTTP/1.1\r\n")
                for n in range(int(header_timeout + SLACK)):
                    if await closed_within(reader, 1.0):
                        return time.monotonic() - started
                    with suppress(ConnectionError):
                        writer.write(f"X-Slow-{n}: still typing\r\n".encode())
                return float("inf")

        held = await asyncio.gather(*(slow_head() for _ in range(200)))

    assert max(held) <= header_timeout + SLACK, sorted(held)[-5:]


# Bodies sent slowly

async def trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                  body: bytes, every: float, timeout: float) -> tuple[int, float]:
    """Send ``body`` a byte every ``every`` seconds until an answer comes; returns its
    status and when it came (seconds after the head was sent)."""
    started = time.monotonic()
    answer = asyncio.create_task(response_head(reader, timeout))
    try:
        for byte in body:
            if answer.done():
                break
            with suppress(ConnectionError):
                writer.write(bytes([byte]))
            await asyncio.wait([answer], timeout=every)
        status, _ = await answer
    finally:
        answer.cancel()
    return status, time.monotonic() - started


async def post_trickled(url: str, target: str, content_type: str, body: bytes) -> None:
    """POST ``body`` to ``target`` a byte every 0.2 s (its head at once), with a body timeout
    of 1 s: the answer must be 408 within the timeout, and the connection then closed."""
    async with raw(url) as (reader, writer):
        writer.write((f"POST {target} HTTP/1.1\r\n" + HEAD + f"Content-Type: {content_type}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode())

        status, after = await trickle(writer, reader, body, every=0.2, timeout=1.0 + SLACK)

        assert status == 408
        assert after <= 1.0 + SLACK
        assert await closed_within(reader, SLACK)


async def test_a_sign_in_body_trickled_slowly_is_cut_off() -> None:
    """A sign-in request whose body takes longer than the body timeout is answered 408 and
    its connection closed."""
    body = b'{"email": "victim@example.com"}' + b" " * 200
    async with LocalServer(body_timeout=1.0) as server:
        await post_trickled(server.url, "/auth/request-magic-link", "application/json", body)
        assert server.links == []


async def test_a_long_polling_body_trickled_slowly_is_cut_off() -> None:
    """An Engine.IO long-polling POST whose body takes longer than the body timeout is
    answered 408 and its connection closed."""
    async with LocalServer(body_timeout=1.0) as server:
        sid = await polling_session(server.url)
        await post_trickled(server.url, f"{POLLING}&sid={sid}", "text/plain;charset=UTF-8",
                            b'40{"x": "' + b"y" * 100 + b'"}')


async def test_a_large_body_arriving_in_pieces_is_read_whole() -> None:
    """A sign-in body of 900 KB, in 100 pieces, is read whole (not cut short, not refused)."""
    padding = b" " * 900_000
    body = b'{"email": "alice@example.com", "padding": "' + padding + b'"}'
    async with LocalServer() as server, raw(server.url) as (reader, writer):
        writer.write(("POST /auth/request-magic-link HTTP/1.1\r\n" + HEAD +
                      "Content-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode())
        piece = len(body) // 100 + 1
        for start in range(0, len(body), piece):
            writer.write(body[start:start + piece])
            await asyncio.wait_for(writer.drain(), 5)
            await asyncio.sleep(0.01)

        status, answer = await response(reader, 5)

        assert status == 200, answer
        assert (await server.next_link("alice@example.com")).email == "alice@example.com"


# Bodies announced too big

async def test_an_oversized_long_polling_post_is_answered_413_at_once() -> None:
    """A long-polling POST announcing more than 1,000,000 bytes is answered 413 at once
    and closed (it used to get no answer at all)."""
    async with LocalServer() as server:
        sid = await polling_session(server.url)
        async with raw(server.url) as (reader, writer):
            writer.write((f"POST {POLLING}&sid={sid} HTTP/1.1\r\n" + HEAD +
                          "Content-Type: text/plain;charset=UTF-8\r\n"
                          "Content-Length: 1000001\r\n\r\n").encode())

            status, _ = await response_head(reader, SLACK)

            assert status == 413
            assert await closed_within(reader, SLACK)


async def test_an_oversized_sign_in_post_is_answered_413_problem_json_at_once(
        server: LocalServer) -> None:
    """A sign-in request announcing a body over the server's limit is answered 413 problem
    JSON before any of the body is sent, and closed."""
    async with raw(server.url) as (reader, writer):
        writer.write(("POST /auth/request-magic-link HTTP/1.1\r\n" + HEAD +
                      "Content-Type: application/json\r\n"
                      "Content-Length: 2000000\r\n\r\n").encode())

        status, body = await response(reader, SLACK)

        assert status == 413
        assert_problem(json.loads(body), 413)
        assert await closed_within(reader, SLACK)


# Idle connections

async def test_one_address_holds_a_bounded_number_of_idle_connections() -> None:
    """Beyond the cap, an address's new idle connections are closed at once; its
    connections busy with a request (WebSockets here) and other addresses are not affected."""
    async with LocalServer(max_idle_connections_per_address=5) as server, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        sockets = [await http.ws_connect(server.url + "/socket.io/?EIO=4&transport=websocket")
                   for _ in range(10)]
        async with idle_connections(server, 5) as idle:
            async with raw(server.url) as (reader, _):
                assert await closed_within(reader, SLACK)  # the sixth
            for streams in idle:
                assert await healthz_on(streams) == 200  # still open
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=5),
                    connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as other, \
                    other.get(server.url + "/healthz") as resp:
                assert resp.status == 200
        assert not any(ws.closed for ws in sockets)
        for ws in sockets:
            await ws.close()


async def test_trusted_proxies_may_hold_many_idle_connections() -> None:
    """A trusted proxy carries many clients: its idle connections are not capped."""
    async with LocalServer(max_idle_connections_per_address=5,
                           trusted_proxies=("127.0.0.1",)) as server:
        opened = [await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), 5)
                  for _ in range(20)]
        try:
            for streams in opened:
                assert await healthz_on(streams) == 200  # none of them was closed
        finally:
            for _, writer in opened:
                writer.close()


@asynccontextmanager
async def idle_connections(server: LocalServer, count: int) -> AsyncIterator[list[Streams]]:
    """``count`` raw connections that send nothing, open (and counted idle) for the block."""
    opened: list[Streams] = []
    idle = server.server.idle_connections.idle
    try:
        for _ in range(count):
            opened.append(await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", server.port), 5))
        await wait_until(lambda: idle["127.0.0.1"] == count, 5,
                         lambda: f"{count} idle connections counted, got {idle}")
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def healthz_on(streams: Streams) -> int:
    """The status of ``GET /healthz`` sent on an open connection (it answers if still open)."""
    reader, writer = streams
    writer.write(b"GET /healthz HTTP/1.1\r\n" + HEAD.encode() + b"\r\n")
    status, _ = await response(reader, 5)
    return status


async def test_half_open_requests_from_one_address_leave_room_for_others(
        tmp_path: Path) -> None:
    """A server allowed 128 open files, 150 half-open requests from 127.0.0.1: ``/healthz``
    from 127.0.0.2 still answers during the attack."""
    proc = ServerProcess(state_home=tmp_path, env={"JWT_SECRET_KEY": "s" * 40})
    proc.argv = ["/bin/sh", "-c", 'ulimit -n 128 && exec "$0" "$@"', *proc.argv]
    async with proc:
        attackers: list[Streams] = []
        try:
            for _ in range(150):
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", proc.port), 5)
                writer.write(b"GET / HTTP/1.1\r\nX-Half: open\r\n")
                attackers.append((reader, writer))
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=5),
                    connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as http, \
                    http.get(proc.url + "/healthz") as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "ok"}
            still_open = [r for r, _ in attackers if not await closed_within(r, 0.01)]
            assert len(still_open) <= 50
        finally:
            for _, writer in attackers:
                writer.close()
        await proc.wait_for_line("closed a new connection from 127.0.0.1")


async def test_a_long_polling_post_arriving_in_pieces_reaches_engine_io_whole(
        server: LocalServer) -> None:
    """A long-polling POST whose body comes in two pieces is read whole: its Socket.IO
    CONNECT (``40``, refused here for want of a session) gets its answer on the next poll."""
    sid = await polling_session(server.url)
    async with raw(server.url) as (reader, writer):
        writer.write((f"POST {POLLING}&sid={sid} HTTP/1.1\r\n" + HEAD +
                      "Content-Type: text/plain;charset=UTF-8\r\n"
                      "Content-Length: 2\r\n\r\n4").encode())
        await asyncio.wait_for(writer.drain(), 5)
        await asyncio.sleep(0.2)
        writer.write(b"0")

        status, body = await response(reader, 5)

        assert (status, body) == (200, b"OK")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
            http.get(f"{server.url}{POLLING}&sid={sid}") as resp:
        answer = await resp.text()
    assert answer.startswith("44"), answer  # CONNECT_ERROR: the server read "40"
