"""The Roomz server: one aiohttp application carrying the sign-in endpoints and Socket.IO."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from .addresses import ClientAddresses
from .assets import assets
from .bad_http_log import QuietBadRequests
from .bus_gaps import BusGaps
from .chat import Chat, QuestionsFor
from .history import HistoryStore, SqliteHistory, Window
from .idle_connections import IdleConnections, listen
from .internals import FanOutManager, SocketServer, WirePacket
from .magic_links import MagicLinks, MagicLinkStore
from .mail import CallbackMailer, ConsoleMailer, MagicLinkCallback, Mailer, SmtpMailer
from .pages import Pages
from .presence import Presence, PresenceStore
from .problems import problems_for_http_errors
from .question_rules import QuestionBook
from .question_store import QuestionStore
from .questions import Questions
from .rate_limit import RateLimit, RateLimiter
from .replay import Replays
from .request_bodies import MAX_BODY_BYTES, BodyLimits, read_buffer_size
from .session_records import SessionRecords, SqliteSessionRecords
from .sessions import Sessions
from .settings import ServerSettings, default_state_dir
from .signin import SignIn, origin_of
from .unavailable import StoreUnavailable

if TYPE_CHECKING:
    from .redis_history import RedisHistory
    from .redis_presence import RedisPresence
    from .redis_state import RedisFanOutManager

log = logging.getLogger("roomz.server")

CLEANUP_INTERVAL_SECONDS = 60.0
#: What runs for as long as the application does: aiohttp's cleanup contexts.
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


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
        assert self.settings.jwt_secret is not None  # checked() guarantees one
        self._background: list[CleanupContext] = []
        self.magic_links: MagicLinkStore
        self.rate_limiter: RateLimit
        records: SessionRecords
        presence: PresenceStore
        manager: socketio.AsyncManager
        shared: RedisPresence | None = None
        history: HistoryStore | None = None
        bus_and_history: tuple[RedisFanOutManager, RedisHistory] | None = None
        questions: QuestionsFor
        window = Window(self.settings.history_messages, self.settings.history_seconds)
        if self.settings.redis_url is None:
            state_dir = self.settings.state_dir or default_state_dir()
            self.magic_links = links = MagicLinks(lifetime)
            self.rate_limiter = limiter = RateLimiter()
            records = SqliteSessionRecords.in_state_dir(state_dir)
            presence, manager = Presence(), FanOutManager()
            local_history = SqliteHistory.in_state_dir(state_dir, window) \
                if self.settings.history else None
            questions = functools.partial(Questions, store=QuestionStore(state_dir))
            history = local_history
            self._background.append(_in_background(
                lambda: _housekeeping(links, limiter, local_history)))
        else:
            from . import redis_state
            from .redis_presence import RedisPresence

            redis = redis_state.connect(self.settings.redis_url)
            self.magic_links = redis_state.RedisMagicLinks(redis, lifetime)
            self.rate_limiter = redis_state.RedisRateLimiter(redis)
            records = redis_state.RedisSessionRecords(redis)
            presence = shared = RedisPresence(redis, self.settings.node_timeout)
            manager = bus = redis_state.RedisFanOutManager(self.settings.redis_url,
                                                           publisher=redis)
            if self.settings.history:
                from .redis_history import RedisHistory

                history = RedisHistory(redis, window, bus=bus)
                bus_and_history = (bus, history)
            from .redis_questions import RedisQuestions

            # Swept for deadlines as often as the node beats: a dead asker's question
            # times out at most a beat late.
            questions = functools.partial(RedisQuestions, redis,
                                          sweep_seconds=shared.heartbeat_seconds,
                                          on_unreachable=bus.unreachable)
            # Redis expires links, rate-limit windows and idle streams itself, and trims
            # streams by count: no housekeeping here.
            self._background.append(redis_state.background(shared, bus))
        # Opened as the server starts, closed as it stops; before, the session checks.
        self._background.insert(0, _opened(records))
        replays = None
        if history is not None:  # opened with the records
            self._background.insert(1, _opened(history))
            replays = Replays(history, manager)
        self.sessions = Sessions(self.settings.jwt_secret, self.settings.jwt_expiry_days,
                                 records)
        self.addresses = ClientAddresses(self.settings.trusted_proxies)
        self.sio = SocketServer(
            connect_timeout=self.settings.connect_timeout,
            max_connections=self.settings.max_connections,
            max_queued_events=self.settings.max_queued_events,
            max_unfinished_per_address=self.settings.max_unfinished_per_address,
            addresses=self.addresses,
            async_mode="aiohttp", client_manager=manager, serializer=WirePacket,
            # Handlers only queue packets: running them inline keeps each connection's order.
            async_handlers=False,
            ping_interval=self.settings.ping_interval, ping_timeout=self.settings.ping_timeout,
            max_http_buffer_size=MAX_BODY_BYTES,
            cors_allowed_origins=self.is_own_origin,
        )
        self.chat = Chat(self.sio, self.sessions, self.settings, presence, questions,
                         replays)
        # After the history and the message bus: timeouts are kept and sent through them.
        self._background.append(_opened(self.chat.questions))
        self.sio.name_of = self.chat.email_of  # slow readers are named in the log
        if shared is not None:
            shared.on_departures = self.chat.announce_departures
        if bus_and_history is not None:
            # Kept messages arrive by the bus alone: a broken subscription may have lost some.
            bus, kept = bus_and_history
            bus.after_gap = BusGaps(self.sio, self.chat.connections, bus, kept)
        self._background.append(_in_background(lambda: _session_checks(
            self.chat, records, self.settings.session_check_interval)))
        self.idle_connections = IdleConnections(self.settings.max_idle_connections_per_address,
                                                exempt=self.addresses.is_trusted)
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._bad_requests = QuietBadRequests()
        self._url: str | None = None

    def base_url(self) -> str:
        """The URL people reach this server at: the public URL, else the listening address."""
        return (self.settings.public_url or self.url).rstrip("/")

    def is_own_origin(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        """True when a Socket.IO request's ``Origin`` (a browser's) is a page of this
        server's: the base URL's origin, or that of the host the request names (Engine.IO's
        own rule, which lets a loopback server be browsed as ``localhost`` too). A proxy
        may name the host without the page's port (nginx's ``$server_name``), hence both."""
        got = origin_of(origin or "")
        if got is None:
            return False
        request = environ["aiohttp.request"]
        scheme = "https" if self.addresses.is_https(request) else "http"
        return got in (origin_of(self.base_url()), origin_of(f"{scheme}://{request.host}"))

    def _build_app(self) -> web.Application:
        bodies = BodyLimits(MAX_BODY_BYTES, self.settings.body_timeout)
        app = web.Application(
            # Outermost first: a request keeps its connection busy from start to end, and
            # errors about bodies are problem JSON under /auth/ like the others.
            middlewares=[self.idle_connections.middleware, problems_for_http_errors,
                         bodies.middleware],
            client_max_size=MAX_BODY_BYTES)
        signin = SignIn(self.settings, self.magic_links, self.rate_limiter, self.sessions,
                        self.mailer, base_url=self.base_url, addresses=self.addresses)
        app.add_routes(signin.routes() + Pages(self.sessions, self.base_url).routes()
                       + assets().routes())
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
        runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=3.0,
            # aiohttp closes a connection that has not completed a request head within its
            # keep-alive timeout, from the moment it is accepted: the header timeout.
            keepalive_timeout=self.settings.header_timeout,
            # A body left unread (413, 408) is not read on: the connection closes instead.
            lingering_time=0,
            read_bufsize=read_buffer_size(MAX_BODY_BYTES),
        )
        await runner.setup()
        try:
            self._listener = await listen(runner, self.settings.host, self.settings.port,
                                          self.idle_connections)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bad_requests.install()
        port = self._listener.sockets[0].getsockname()[1]
        host = self.settings.host
        self._url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        log.info("Roomz server listening on %s (chat page: %s/)", self._url, self.base_url())

    async def stop(self) -> None:
        """Disconnect every client normally, then stop listening."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._bad_requests.uninstall()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _mailer_for(settings: ServerSettings, on_magic_link: MagicLinkCallback | None) -> Mailer:
    if on_magic_link is not None:
        return CallbackMailer(on_magic_link)
    if settings.email_sender == "smtp":
        return SmtpMailer(settings.smtp)
    return ConsoleMailer()


def _opened(store: SessionRecords | HistoryStore | QuestionBook) -> CleanupContext:
    """An aiohttp cleanup context: ``store`` is open while the server runs."""
    async def opened(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()
    return opened


def _in_background(work: Callable[[], Coroutine[Any, Any, None]]) -> CleanupContext:
    """An aiohttp cleanup context: ``work()`` runs as a task until the server stops."""
    async def running(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return running


async def _housekeeping(links: MagicLinks, limiter: RateLimiter,
                        history: SqliteHistory | None) -> None:
    """Forget expired magic links, rate-limit windows and messages that have left the
    history window, now and then."""
    while True:
        await asyncio.sleep(CLEANUP_INTERVAL_SECONDS)
        removed = await links.remove_expired()
        await limiter.remove_expired()
        if removed:
            log.debug("removed %d expired magic links", removed)
        if history is not None:
            try:
                await history.trim()
            except StoreUnavailable as exc:
                log.warning("cannot trim the message history: %s", exc)


async def _session_checks(chat: Chat, records: SessionRecords, interval: float) -> None:
    """End live connections whose sessions ended, every ``interval`` seconds; now and then
    forget records of sessions expired anyway."""
    loop = asyncio.get_running_loop()
    purged = loop.time()
    while True:
        await asyncio.sleep(interval)
        try:
            await chat.check_sessions()
            if loop.time() - purged >= CLEANUP_INTERVAL_SECONDS:
                purged = loop.time()
                await records.purge_expired()
        except StoreUnavailable as exc:
            log.warning("cannot purge expired session records: %s", exc)
        except Exception:  # a check that stops would leave ended sessions connected
            log.exception("session check failed; trying again in %g s", interval)
