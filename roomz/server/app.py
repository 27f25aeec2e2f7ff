"""The Roomz server: one aiohttp application carrying the sign-in endpoints and Socket.IO."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import socketio
from aiohttp import web

from .chat import Chat
from .fanout import FanOutManager
from .internals import SocketServer
from .magic_links import MagicLinks, MagicLinkStore
from .mail import CallbackMailer, ConsoleMailer, MagicLinkCallback, Mailer, SmtpMailer
from .pages import Pages
from .presence import Presence, PresenceStore
from .problems import problems_for_http_errors
from .rate_limit import RateLimit, RateLimiter
from .sessions import Sessions, Versions, VersionStore
from .settings import ServerSettings
from .signin import SignIn

log = logging.getLogger("roomz.server")

CLEANUP_INTERVAL_SECONDS = 60.0


class Server:
    """A Roomz server you can run from Python, in your own event loop.

    >>> async with Server(ServerSettings(port=0), on_magic_link=links.append) as server:
    ...     print(server.url)

    ``on_magic_link`` receives every magic link instead of mailing it, which is how
    tests and the embedded terminal sign people in without copying tokens.
    Raises :class:`~roomz.server.settings.SettingsError` when the settings are unsafe.
    """

    def __init__(self, settings: ServerSettings | None = None, *,
                 on_magic_link: MagicLinkCallback | None = None,
                 mailer: Mailer | None = None) -> None:
        self.settings = (settings or ServerSettings()).checked()
        self.mailer = mailer or _mailer_for(self.settings, on_magic_link)
        lifetime = self.settings.magic_link_expiry_minutes * 60
        limit = self.settings.magic_link_rate_limit
        assert self.settings.jwt_secret is not None  # checked() guarantees one
        self._background: list[Any] = []
        self.magic_links: MagicLinkStore
        self.rate_limiter: RateLimit
        versions: VersionStore
        presence: PresenceStore
        manager: socketio.AsyncManager
        if self.settings.redis_url is None:
            self.magic_links = links = MagicLinks(lifetime)
            self.rate_limiter = limiter = RateLimiter(limit)
            versions, presence, manager = Versions(), Presence(), FanOutManager()
            self._background.append(_housekeeping(links, limiter))
        else:
            from . import redis_state

            redis = redis_state.connect(self.settings.redis_url)
            self.magic_links = redis_state.RedisMagicLinks(redis, lifetime)
            self.rate_limiter = redis_state.RedisRateLimiter(redis, limit)
            versions = redis_state.RedisVersions(redis)
            presence = shared = redis_state.RedisPresence(redis)
            manager = bus = redis_state.RedisFanOutManager(self.settings.redis_url,
                                                           publisher=redis)
            # Redis expires links and rate-limit windows itself: no housekeeping here.
            self._background.append(redis_state.background(shared, bus))
        self.sessions = Sessions(self.settings.jwt_secret, self.settings.jwt_expiry_days,
                                 versions)
        self.sio = SocketServer(
            connect_timeout=self.settings.connect_timeout,
            max_connections=self.settings.max_connections,
            max_queued_events=self.settings.max_queued_events,
            async_mode="aiohttp", client_manager=manager,
            # Handlers only queue packets: running them inline keeps each connection's order.
            async_handlers=False,
            ping_interval=self.settings.ping_interval, ping_timeout=self.settings.ping_timeout,
        )
        self.chat = Chat(self.sio, self.sessions, self.settings, presence)
        self.sio.name_of = self.chat.email_of  # slow readers are named in the log
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[problems_for_http_errors])
        signin = SignIn(self.settings, self.magic_links, self.rate_limiter, self.sessions,
                        self.mailer)
        app.add_routes(signin.routes() + Pages(self.sessions).routes())
        self.sio.attach(app)
        app.cleanup_ctx.extend(self._background)
        app.on_shutdown.append(self._disconnect_clients)
        return app

    async def _disconnect_clients(self, app: web.Application) -> None:
        await self.chat.close_all()
        await self.sio.shutdown()

    @property
    def url(self) -> str:
        """The base URL clients use, such as ``http://127.0.0.1:8000``; set once started."""
        if self._url is None:
            raise RuntimeError("the server is not started")
        return self._url

    async def start(self) -> None:
        """Listen on the configured host and port (port 0 picks a free one)."""
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                               shutdown_timeout=3.0)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = self.settings.host
        self._url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        log.info("Roomz server listening on %s", self._url)

    async def stop(self) -> None:
        """Disconnect every client normally, then stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()


def _mailer_for(settings: ServerSettings, on_magic_link: MagicLinkCallback | None) -> Mailer:
    if on_magic_link is not None:
        return CallbackMailer(on_magic_link)
    if settings.email_sender == "smtp":
        return SmtpMailer(settings.smtp)
    return ConsoleMailer()


def _housekeeping(links: MagicLinks,
                  limiter: RateLimiter) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context: forget expired magic links and rate-limit windows."""
    async def sweep() -> None:
        while True:
            await asyncio.sleep(CLEANUP_INTERVAL_SECONDS)
            removed = await links.remove_expired()
            await limiter.remove_expired()
            if removed:
                log.debug("removed %d expired magic links", removed)

    async def housekeeping(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return housekeeping
