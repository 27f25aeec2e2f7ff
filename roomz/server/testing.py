"""``ThreadedServer``: a :class:`~roomz.server.local.LocalServer` in a thread of its own,
for tests and benchmarks whose own thread blocks (``SyncClient``, timing a process).

The server itself is :mod:`roomz.server.local`: production code (the terminal's embedded
mode) imports it from there, never from a module named ``testing``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .local import LocalServer
from .mail import MagicLink

T = TypeVar("T")


class ThreadedServer:
    """A :class:`LocalServer` running in its own thread and event loop.

    For callers that block their own thread (``SyncClient`` tests, benchmarks timing a
    process): a server on that thread's loop would be starved meanwhile.
    ``with ThreadedServer() as server:`` then ``server.url``, ``server.run(coro)``.
    """

    def __init__(self, **overrides: Any) -> None:
        self._overrides = overrides
        self._started: concurrent.futures.Future[LocalServer] = concurrent.futures.Future()
        # asyncio.run: at the end it also cancels leftover tasks (say, pings of sockets left
        # open), finishes async generators and closes the loop.
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()),
                                        name="roomz-local-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.local: LocalServer | None = None

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with LocalServer(**self._overrides) as local:
                self._started.set_result(local)
                await self._stop.wait()
        except BaseException as exc:
            if not self._started.done():  # tell __enter__, which is waiting
                self._started.set_exception(exc)
            raise

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        assert self._loop is not None, "the server has not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def url(self) -> str:
        """The server's base URL."""
        assert self.local is not None
        return self.local.url

    def links(self) -> list[MagicLink]:
        """Every magic link the server has sent so far."""
        assert self.local is not None
        return list(self.local.links)

    def request_link(self, email: str) -> MagicLink:
        """Ask for a magic link over HTTP and return it."""
        assert self.local is not None
        return self.run(self.local.request_link(email))

    def sign_in(self, email: str) -> str:
        """Sign ``email`` in over HTTP and return the session token."""
        assert self.local is not None
        return self.run(self.local.sign_in(email))

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        self.local = self._started.result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
