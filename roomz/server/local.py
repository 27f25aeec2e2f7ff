"""``LocalServer``: a Roomz server in this process, on a free loopback port, that keeps the
magic links it sends and can sign people in itself. The terminal's embedded mode runs one;
tests, benchmarks and the plugin authors' harness (:mod:`roomz_bots.testing`) too."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from .app import Server
from .mail import MagicLink
from .sessions import COOKIE_NAME
from .settings import ServerSettings


class LocalServer:
    """A :class:`Server` on ``127.0.0.1`` with a free port that keeps every magic link it sends.

    ``async with LocalServer() as server:`` then ``server.url``, ``server.links``,
    ``await server.next_link(email)`` and ``await server.sign_in(email)``.
    ``on_magic_link(link)``, if given, is told of each link too.
    Unless told a ``state_dir``, it keeps its state (such as ended sessions) in a temporary
    directory of its own, never in the user's, removed once the server is garbage.
    """

    def __init__(self, settings: ServerSettings | None = None, *,
                 on_magic_link: Callable[[MagicLink], None] | None = None,
                 **overrides: Any) -> None:
        base = settings or ServerSettings(jwt_secret=secrets.token_urlsafe(32))
        self.settings = dataclasses.replace(base, host="127.0.0.1", port=0, **overrides)
        if self.settings.state_dir is None:  # kept across restarts, like a real server's
            state_dir = tempfile.mkdtemp(prefix="roomz-local-server-")
            weakref.finalize(self, shutil.rmtree, state_dir, ignore_errors=True)
            self.settings = dataclasses.replace(self.settings, state_dir=Path(state_dir))
        self.links: list[MagicLink] = []
        self.on_magic_link = on_magic_link  # told of each link too, once it is kept
        self._new_link = asyncio.Condition()
        self.server = Server(self.settings, on_magic_link=self._record)
        self._port: int | None = None

    async def _record(self, link: MagicLink) -> None:
        async with self._new_link:
            self.links.append(link)
            self._new_link.notify_all()
        if self.on_magic_link is not None:
            self.on_magic_link(link)

    @property
    def url(self) -> str:
        """The base URL, such as ``http://127.0.0.1:40123``."""
        return self.server.url

    @property
    def port(self) -> int:
        """The loopback port it listens on (the same one after a restart)."""
        assert self._port is not None, "the server has not started"
        return self._port

    async def next_link(self, email: str, *, after: int = 0, timeout: float = 5.0) -> MagicLink:
        """The first link for ``email`` among ``links[after:]``, waiting up to ``timeout``."""
        def found() -> MagicLink | None:
            return next((link for link in self.links[after:] if link.email == email), None)

        async def wait() -> MagicLink:
            async with self._new_link:
                await self._new_link.wait_for(lambda: found() is not None)
            return found()  # type: ignore[return-value]

        return await asyncio.wait_for(wait(), timeout)

    async def request_link(self, email: str) -> MagicLink:
        """Ask for a magic link over HTTP, as a client would, and return it."""
        before = len(self.links)
        await request_magic_link(self.url, email)
        return await self.next_link(email, after=before)

    async def sign_in(self, email: str) -> str:
        """Sign ``email`` in over HTTP and return the session token (the cookie's value)."""
        link = await self.request_link(email)
        return await follow_magic_link(link.url)

    async def start(self) -> None:
        """Start listening; after a :meth:`stop`, a fresh server on the same port and secret."""
        if self._port is not None:  # a Server starts once: a new one takes over its port
            settings = dataclasses.replace(self.settings, port=self._port)
            self.server = Server(settings, on_magic_link=self._record)
        await self.server.start()
        self._port = int(self.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        """Stop listening: clients lose their connections (and reconnect after :meth:`start`)."""
        await self.server.stop()

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)


async def request_magic_link(server_url: str, email: str) -> None:
    """``POST /auth/request-magic-link`` for ``email``; AssertionError unless it answers 200."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.post(
        f"{server_url}/auth/request-magic-link", json={"email": email}
    ) as resp:
        if resp.status != 200:
            body = await resp.text()
            raise AssertionError(f"magic link request failed: {resp.status} {body}")


async def follow_magic_link(link_url: str) -> str:
    """Open a magic link as a browser would and return the session token it sets."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(
        link_url, allow_redirects=False
    ) as resp:
        morsel = resp.cookies.get(COOKIE_NAME)
        if morsel is None:
            raise AssertionError(f"no session cookie from {link_url}: {resp.status}")
        return morsel.value
