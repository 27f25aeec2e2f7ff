"""Helpers for client tests: the API's shapes, bounded waits, small real servers, scripts.

Every server here is real and listens on loopback: a TCP server that accepts and never
answers, and a tiny Socket.IO server that signs a client in and never acknowledges anything.
A user's whole program runs as a Python script in a subprocess (:func:`python_script`).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import socketio
from aiohttp import web

from roomz.server.local import LocalServer
from tests.events import user_of
from tests.waiting import stays_true as stays_true
from tests.waiting import wait_until as wait_until

TIMEOUT = 5.0
FAKE_SESSION = "not-a-real-session"


def is_iso8601(value: object) -> bool:
    """True for an ISO 8601 timestamp string."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def is_uuid(value: object) -> bool:
    """True for a UUID string."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def assert_send_ack(ack: object) -> None:
    """Assert ``ack`` is the documented success of ``send()``."""
    assert isinstance(ack, dict), ack
    assert set(ack) == {"status", "message_id", "timestamp"}, ack
    assert ack["status"] == "ok"
    assert is_uuid(ack["message_id"]), ack
    assert is_iso8601(ack["timestamp"]), ack


def assert_error_dict(result: object, code: int) -> None:
    """Assert ``result`` is the documented failure shape ``{"error": str, "code": int}``."""
    assert isinstance(result, dict), result
    assert set(result) == {"error", "code"}, result
    assert isinstance(result["error"], str) and result["error"], result
    assert result["code"] == code, result


async def restart_in_process(local: LocalServer) -> None:
    """Stop ``local``'s server and start a new one on the same port with the same secret."""
    await asyncio.wait_for(local.stop(), TIMEOUT)
    await asyncio.wait_for(local.start(), TIMEOUT)


class SilentServer:
    """A TCP server on loopback that accepts connections, records bytes, and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = bytearray()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while chunk := await reader.read(4096):
            self.received.extend(chunk)

    async def start(self, port: int = 0) -> str:
        """Listen on ``127.0.0.1:port`` and return the URL."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port,
                                                  reuse_address=True)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        """Close every accepted connection and stop listening."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), TIMEOUT)


@asynccontextmanager
async def silent_server(port: int = 0) -> AsyncIterator[tuple[str, SilentServer]]:
    """``(url, server)`` of a :class:`SilentServer` for the block."""
    server = SilentServer()
    url = await server.start(port)
    try:
        yield url, server
    finally:
        await server.stop()


@asynccontextmanager
async def ackless_server() -> AsyncIterator[str]:
    """A real Socket.IO server that signs anyone in and never acknowledges anything.

    ``/auth/verify`` sets a session cookie for any token; the Socket.IO side sends
    ``authenticated`` on connect and has no handler for ``message`` or
    ``set_display_name``, so python-socketio sends no acknowledgement.
    """
    sio = socketio.AsyncServer(async_mode="aiohttp")

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.emit("authenticated", {
            "user": user_of("slow@example.com"), "channel": "user:slow@example.com",
            "server_time": datetime.now().astimezone().isoformat(),
        }, to=sid)

    sio.on("connect", connect)
    async with signing_anyone_in(sio) as url:
        yield url


@asynccontextmanager
async def signing_anyone_in(sio: socketio.AsyncServer) -> AsyncIterator[str]:
    """The URL of ``sio`` served on loopback for the block, with an ``/auth/verify`` that
    sets a session cookie for any token."""
    async def verify(request: web.Request) -> web.Response:
        response = web.HTTPFound("/")
        response.set_cookie("session_token", FAKE_SESSION, path="/", httponly=True)
        raise response

    app = web.Application()
    app.add_routes([web.get("/auth/verify", verify)])
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await asyncio.wait_for(runner.cleanup(), TIMEOUT)


class RenamesOnce:
    """A real Socket.IO server that signs anyone in, acknowledges the first
    ``set_display_name`` and none after it; :meth:`drop` ends the client's connection.

    A client with a name set that reconnects to it re-applies the name and never hears
    back: each attempt times out after ``authenticated`` came.
    """

    def __init__(self) -> None:
        self.url = ""
        self.sio = socketio.AsyncServer(async_mode="aiohttp")
        self.sids: list[str] = []
        self.sio.on("connect", self._connect)
        self.sio.on("set_display_name", self._set_display_name)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.sids.append(sid)
        await self.sio.emit("authenticated", {
            "user": user_of("slow@example.com"), "channel": "user:slow@example.com",
            "server_time": datetime.now().astimezone().isoformat(),
        }, to=sid)

    async def _set_display_name(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        self.sio.handlers["/"].pop("set_display_name")  # no handler: no acknowledgement
        return {"status": "ok", "display_name": data["display_name"]}

    async def drop(self) -> None:
        """End the last connection, as a server that restarts does."""
        await self.sio.disconnect(self.sids[-1])


@asynccontextmanager
async def renames_once_server() -> AsyncIterator[RenamesOnce]:
    """A :class:`RenamesOnce` on loopback for the block."""
    server = RenamesOnce()
    async with signing_anyone_in(server.sio) as server.url:
        yield server


async def python_script(script: str, *args: str) -> asyncio.subprocess.Process:
    """Start ``python -c script args...`` with stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def ends_cleanly(proc: asyncio.subprocess.Process, timeout: float) -> str:
    """The script's stdout once it has exited 0 with no warning, traceback or task left
    behind on stderr."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    for sign_of_a_leak in ("Unclosed", "Traceback", "Task was destroyed", "never retrieved"):
        assert sign_of_a_leak not in err.decode(), err.decode()
    return out.decode()
