"""A hostile Roomz server: real python-socketio on aiohttp, on loopback, in a thread of its own.

It signs anyone in: ``/auth/verify`` sets a session cookie for any token and the Socket.IO
side accepts any cookie. Each connection is then greeted with ``greeting`` (the n-th
connection with ``greetings[n]``, the last one repeating) and sent ``script``: events of
the wrong shape, and events named like the client's own (``disconnect``...), by default,
always followed by a well-formed ``message`` whose content is
:data:`SENTINEL`, so a test knows the script has been delivered. Every ``message`` and
``set_display_name`` a client sends is answered with ``ack``.

Running in its own thread and event loop, it serves blocking clients (``SyncClient``,
``roomz-cli`` under pexpect) as well as asyncio ones.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import socketio
from aiohttp import web

TIMEOUT = 5.0
EMAIL = "alice@example.com"
SENTINEL = "the script is over"
T = TypeVar("T")

#: An event to emit and its data as python-socketio's ``emit(data=)`` takes it: a tuple is
#: several arguments, None is no argument at all.
Emit = tuple[str, Any]


def user(email: str = EMAIL, display_name: str | None = None) -> dict[str, Any]:
    """A well-formed wire ``user`` object."""
    return {"id": f"user:{email}", "email": email, "display_name": display_name}


NOW = "2026-11-26T08:05:55.413821+00:00"
GREETING = {"user": user(), "channel": f"user:{EMAIL}", "server_time": NOW,
            "connection_id": "c0ffee00-0000-4000-8000-000000000000"}
GOOD_ACK = {"status": "ok", "message_id": "7e57ab1e-0000-4000-8000-000000000000",
            "timestamp": NOW}


def message(content: str, *, sender: dict[str, Any] | None = None, n: int = 0) -> dict[str, Any]:
    """A well-formed ``message`` event."""
    return {"id": f"5e471ne1-0000-4000-8000-{n:012d}", "user": sender or user(),
            "content": content, "timestamp": NOW}


#: Every documented event, in shapes docs/protocol.md does not allow.
WRONG_SHAPES: list[Emit] = [
    ("message", "not an object"),
    ("message", None),  # no argument at all
    ("message", (message("one"), message("two"))),  # two arguments
    ("message", {}),
    ("message", {**message("x"), "content": 42}),
    ("message", {**message("x"), "id": None}),
    ("message", {**message("x"), "user": "mallory"}),
    ("message", {**message("x"), "user": {"id": "user:x", "email": ["x"]}}),
    ("message", {**message("x"), "user": {**user(), "display_name": 7}}),
    ("user_joined", [1, 2, 3]),
    ("user_joined", {"user": user(), "timestamp": NOW, "total_connections": "many"}),
    ("user_joined", {"user": user(), "timestamp": NOW}),
    ("user_left", (None,)),  # one argument: null
    ("user_left", {"user": None, "timestamp": NOW, "remaining_connections": 1}),
    ("display_name_changed", 7),
    ("display_name_changed", {"user": {"email": "x"}, "timestamp": NOW}),
]
#: The names python-socketio's client keeps for its own life cycle, emitted by the server.
RESERVED: list[Emit] = [
    ("connect", None),
    ("connect", {"sid": "spoofed"}),
    ("connect_error", {"message": "spoofed"}),
    ("disconnect", "io server disconnect"),
    ("__disconnect_final", None),
    ("__disconnect_final", "spoofed"),
]
MALFORMED = [*WRONG_SHAPES, *RESERVED]
KINDS = sorted({event for event, _ in MALFORMED})


class HostileServer:
    """The server described in the module docstring; ``start()`` it, ``stop()`` it."""

    def __init__(self, *, greetings: Sequence[Any] = (GREETING,),
                 script: Sequence[Emit] = MALFORMED, ack: Any = GOOD_ACK) -> None:
        self.greetings = list(greetings)
        self.script = list(script)
        self.ack = ack
        #: How many Socket.IO connections have been accepted.
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-server",
                                        daemon=True)
        self._runner: web.AppRunner | None = None
        self._sio: socketio.AsyncServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start serving on a free loopback port (the same one after a :meth:`stop`)."""
        if not self._thread.is_alive():
            self._thread.start()
        self._run(self._start())
        return self.url

    def stop(self) -> None:
        """Close every connection and stop listening; the thread stays for a new start."""
        self._run(self._stop())

    def close(self) -> None:
        """Stop, and end the server's thread."""
        self.stop()
        self._run(_cancel_the_rest())  # python-engineio's service task, greetings under way
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(TIMEOUT)

    async def _start(self) -> None:
        sio = socketio.AsyncServer(async_mode="aiohttp")
        sio.on("connect", self._connect)
        sio.on("message", self._answer)
        sio.on("set_display_name", self._answer)
        app = web.Application()
        app.add_routes([web.get("/auth/verify", _verify),
                        web.post("/auth/request-magic-link", _link_sent)])
        sio.attach(app)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]
        self._sio, self._runner = sio, runner

    async def _stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _connect(self, sid: str, environ: Any = None, auth: Any = None) -> None:
        greeting = self.greetings[min(self.connections, len(self.greetings) - 1)]
        self.connections += 1
        assert self._sio is not None
        self._sio.start_background_task(self._greet, self._sio, sid, greeting, self.connections)

    async def _greet(self, sio: socketio.AsyncServer, sid: str, greeting: Any, n: int) -> None:
        for _ in range(100):  # the namespace is confirmed right after connect() returns
            if sio.manager.is_connected(sid, "/"):
                break
            await asyncio.sleep(0.01)
        await sio.emit("authenticated", greeting, to=sid)
        for event, data in [*self.script, ("message", message(SENTINEL, n=n))]:
            await sio.emit(event, data, to=sid)

    async def _answer(self, sid: str, *args: Any) -> Any:
        return self.ack


async def _cancel_the_rest() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _verify(request: web.Request) -> web.Response:
    response = web.HTTPFound("/")
    response.set_cookie("session_token", "any-session-will-do", path="/", httponly=True)
    raise response


async def _link_sent(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "message": "Magic link sent. Check your email."})


@contextmanager
def hostile_server(**options: Any) -> Iterator[HostileServer]:
    """A started :class:`HostileServer` for the block (see its options)."""
    server = HostileServer(**options)
    server.start()
    try:
        yield server
    finally:
        server.close()
