"""Hostile Socket.IO peers for the security tests, and the server's memory as they act.

- :class:`RawSocket`: an Engine.IO WebSocket that sends whatever frames a test wants,
  answers pings (so only the server's own rules can end it) and records what it gets.
- :func:`open_non_reader`: a signed-in WebSocket on a bare TCP socket that never reads.
- :func:`polling_session`: an Engine.IO long-polling handshake, nothing more.
- :func:`rss_mb`: a process's resident memory, from ``/proc``.
- :func:`settled`: waits until a server process's log stops growing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from urllib.parse import urlsplit

import aiohttp

from tests.server.proc import ServerProcess

ENGINE_PATH = "/socket.io/?EIO=4&transport=websocket"
POLLING_PATH = "/socket.io/?EIO=4&transport=polling"
TIMEOUT = 5.0


class RawSocket:
    """One Engine.IO WebSocket driven by hand; ``texts`` holds every text frame received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, answers_pings: bool = True) -> None:
        self.ws = ws
        self.answers_pings = answers_pings
        self.texts: list[str] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str,
                   token: str | None = None, *, answers_pings: bool = True) -> RawSocket:
        """Open ``/socket.io/`` as a WebSocket (with the session cookie, if given); it
        answers every PING unless told not to."""
        headers = {"Cookie": f"session_token={token}"} if token else {}
        ws = await asyncio.wait_for(http.ws_connect(url + ENGINE_PATH, headers=headers,
                                                    max_msg_size=0, compress=0), TIMEOUT)
        raw = cls(ws, answers_pings=answers_pings)
        await raw.wait_text(lambda text: text.startswith("0"))  # Engine.IO OPEN
        return raw

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    if msg.data == "2" and self.answers_pings:  # stay alive while allowed
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await self.ws.send_str("3")
                    self.texts.append(msg.data)
                    self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def send(self, data: str | bytes) -> bool:
        """Send one frame; False when the server has already closed the connection."""
        try:
            if isinstance(data, bytes):
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(data)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            return False
        return not self.ws.closed

    async def wait_text(self, matches: object, timeout: float = TIMEOUT) -> str:
        """The first text frame for which ``matches(text)`` holds, waiting for it."""
        assert callable(matches)

        async def wait() -> str:
            while True:
                self._changed.clear()
                for text in self.texts:
                    if matches(text):
                        return text
                if self.closed.is_set():
                    raise AssertionError(f"closed before the frame came; got {self.texts}")
                await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def sign_in(self) -> None:
        """Send the Socket.IO CONNECT and wait until it is accepted."""
        await self.send("40")
        await self.wait_text(lambda text: text.startswith("40{"))

    async def wait_closed(self, timeout: float) -> bool:
        """True once the server has closed the connection, False if it has not in time."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout)
        return self.closed.is_set()

    async def close(self) -> None:
        """Close from this side (test clean-up)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 1)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


def http_session() -> aiohttp.ClientSession:
    """A client session without aiohttp's 100-connection cap, for many sockets at once."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=None, connect=TIMEOUT))


async def polling_session(url: str) -> str:
    """Open an Engine.IO long-polling session and return its sid."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http, \
            http.get(url + POLLING_PATH) as resp:
        text = await resp.text()
    return str(json.loads(text[1:])["sid"])


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked WebSocket frame, as a client sends it."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return header + mask + masked


async def open_non_reader(url: str, token: str) -> socket.socket:
    """A signed-in Engine.IO WebSocket on a bare TCP socket that will never be read again.

    Its receive buffer is made small, so the server's writes back up within a few
    hundred kilobytes rather than the megabytes the kernel would otherwise take in.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.wait_for(loop.sock_connect(sock, (parts.hostname, parts.port)), TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {ENGINE_PATH} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nCookie: session_token={token}\r\n\r\n")
    await loop.sock_sendall(sock, request.encode())
    answer = b""
    deadline = time.monotonic() + TIMEOUT
    while b"\r\n\r\n" not in answer:
        assert time.monotonic() < deadline, f"no WebSocket handshake answer: {answer!r}"
        answer += await asyncio.wait_for(loop.sock_recv(sock, 1), TIMEOUT)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    await loop.sock_sendall(sock, client_frame(b"40"))  # Socket.IO CONNECT; never read again
    return sock


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid``, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def rise(samples: list[float]) -> float:
    """How far the second half of ``samples`` climbs above its first value (MB)."""
    half = samples[len(samples) // 2:]
    return max(half) - half[0]


async def settled(proc: ServerProcess, quiet: float = 0.5, most: float = 10.0) -> None:
    """Wait until the server's log has not grown for ``quiet`` seconds (at most ``most``)."""
    deadline = time.monotonic() + most
    seen = -1
    while len(proc.lines) != seen and time.monotonic() < deadline:
        seen = len(proc.lines)
        await asyncio.sleep(quiet)


async def signed_in_over_polling(http: aiohttp.ClientSession, url: str, token: str) -> str:
    """Open an Engine.IO socket by long-polling and sign it in (a POST of ``40``, then the
    GET that brings the CONNECT's answer), as a browser does; its sid."""
    cookie = {"Cookie": f"session_token={token}"}
    async with http.get(url + POLLING_PATH, headers=cookie) as resp:
        sid = str(json.loads((await resp.text())[1:])["sid"])
    polling = f"{url}{POLLING_PATH}&sid={sid}"
    async with http.post(polling, data="40", headers=cookie) as resp:
        assert resp.status == 200
    async with http.get(polling, headers=cookie) as resp:
        assert (await resp.text()).startswith("40{")  # signed in
    return sid
