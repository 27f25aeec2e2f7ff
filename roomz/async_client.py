"""``AsyncClient``: the asyncio Roomz client, on python-socketio and aiohttp."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import socketio

from . import internals, reconnection, wire
from .backoff import Backoff
from .events import EventHandler, EventHandlers
from .exceptions import AuthenticationError, ClientError, ConnectionError
from .reconnection import OutOfAttempts, Reconnector, Retrying
from .session_cache import SessionCache
from .state import ConnectionState

log = logging.getLogger("roomz.client")

COOKIE = "session_token"
SIGN_IN_ERRORS = {
    "missing_token": "the sign-in token is empty",
    "invalid_token": "the sign-in token is unknown, expired or already used; "
                     "request a new one with login()",
    "unauthorized": "this email is not allowed on the server",
}
SEEN_MESSAGE_IDS = 1024  # enough to catch a redelivery around a reconnect


class AsyncClient:
    """Primary async WebSocket client for Roomz real-time chat.

    ``session_token`` is a magic-link token (from the sign-in mail); it is redeemed
    by :meth:`connect`. With ``session_cache_file`` the resulting session is kept
    there, so later runs connect without a new token.
    """

    def __init__(
        self,
        server_url: str,
        session_token: str = "",
        *,
        reconnect: bool = True,
        reconnect_delay: float = 1.0,
        max_reconnect_attempts: int | None = 5,
        connection_timeout: float = 10.0,
        session_cache_file: str | Path | None = None,
        reconnect_delay_max: float = 30.0,
    ) -> None:
        parts = urlsplit(server_url) if isinstance(server_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"server_url must be an http:// or https:// URL such as http://localhost:8000, "
                f"got {server_url!r}"
            )
        if min(reconnect_delay, reconnect_delay_max, connection_timeout) <= 0 or (
                max_reconnect_attempts is not None and max_reconnect_attempts < 0):
            raise ValueError("reconnect_delay, reconnect_delay_max and connection_timeout must "
                             "be positive, and max_reconnect_attempts at least 0 or None")
        self.server_url = server_url.rstrip("/")
        self._magic_token = session_token
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.max_reconnect_attempts = max_reconnect_attempts
        self.connection_timeout = connection_timeout
        self._cache = SessionCache(session_cache_file) if session_cache_file else None
        self._session: str | None = None
        self._handlers = EventHandlers()
        self._state = ConnectionState.DISCONNECTED
        self._user: dict[str, Any] | None = None
        self._display_name: str | None = None  # as asked for, re-applied after reconnects
        self._sio: socketio.AsyncClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._greeted = asyncio.Event()  # "authenticated" came, malformed, or the socket closed
        self._namespace_connected = asyncio.Event()
        self._refusal: str | None = None
        self._bad_greeting: str | None = None  # what was wrong with "authenticated"
        self._lost_before_greeting = False
        self._seen: OrderedDict[str, None] = OrderedDict()  # recent message ids: none twice
        self._malformed_kinds: set[str] = set()  # logged once each, then dropped quietly
        self._reconnector = Reconnector(self._attempt_to_stay, self._new_retrying)

    # -- what the user sees -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True if the WebSocket is connected and authenticated."""
        return self._state is ConnectionState.CONNECTED

    @property
    def user(self) -> dict[str, Any] | None:
        """``{"id", "email", "display_name"}`` of the signed-in user, or None."""
        return self._user

    @property
    def connection_state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._state

    def on(self, event: str, handler: EventHandler) -> None:
        """Register ``handler`` (sync or async) for ``event``; see the README for event data."""
        self._handlers.on(event, handler)

    def off(self, event: str, handler: EventHandler | None = None) -> None:
        """Unregister ``handler``, or every handler of ``event`` when it is None."""
        self._handlers.off(event, handler)

    # -- signing in -----------------------------------------------------------------------

    async def login(self, email: str) -> bool:
        """Request a magic link for ``email``; True once the server has sent it.

        Raises :class:`ConnectionError` with the server's ``detail`` (email not allowed,
        malformed, rate limited) or the network failure.
        """
        if not isinstance(email, str):
            raise TypeError(f"email must be a str, got {type(email).__name__}")
        try:
            # aiohttp.request: a session of its own, closed with the request, so that a
            # program that only logs in leaves nothing open at exit.
            async with aiohttp.request(
                "POST", f"{self.server_url}/auth/request-magic-link", json={"email": email},
                timeout=aiohttp.ClientTimeout(total=self.connection_timeout),
            ) as resp:
                if resp.status == 200:
                    return True
                detail = await _problem_detail(resp)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise ConnectionError(f"cannot reach {self.server_url}: {_describe(exc)}") from exc
        raise ConnectionError(f"login failed: {detail}", detail=detail, status=resp.status)

    async def _redeem(self, token: str) -> str:
        """Trade a magic-link token for a session token (the ``session_token`` cookie)."""
        try:
            async with aiohttp.request(
                "GET", f"{self.server_url}/auth/verify", params={"token": token},
                allow_redirects=False, timeout=aiohttp.ClientTimeout(total=self.connection_timeout),
            ) as resp:
                morsel = resp.cookies.get(COOKIE)
                location = resp.headers.get("Location", "")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise ConnectionError(f"cannot reach {self.server_url}: {_describe(exc)}") from exc
        if morsel is None or not morsel.value:
            code = location.partition("error=")[2] or f"HTTP {resp.status}"
            reason = SIGN_IN_ERRORS.get(code, f"the server did not sign us in ({code})")
            raise AuthenticationError(f"sign-in failed: {reason}", detail=reason,
                                      status=resp.status)
        return morsel.value

    def clear_cached_session(self) -> None:
        """Forget the session, in memory and in the session cache file."""
        self._session = None
        if self._cache is not None:
            self._cache.remove(self.server_url)

    # -- the live connection --------------------------------------------------------------

    async def connect(self, session_token: str | None = None, *, token: str | None = None,
                      retry: bool = False) -> None:
        """Sign in and open the live connection; returns once the server has authenticated it.

        ``session_token`` (or ``token``) is a magic-link token; without one the session
        from an earlier connect or from the session cache is used.
        Raises :class:`AuthenticationError` when there is no session or the server refuses
        it, and :class:`ConnectionError` when the server cannot be reached in time.
        With ``retry``, a server that cannot be reached (or is full) is tried again on the
        reconnection backoff, until it answers or ``max_reconnect_attempts`` run out.
        """
        if self._state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
            raise ConnectionError(f"already {self._state.value}; call disconnect() first")
        await self._reconnector.stop()  # RECONNECTING: this connect replaces the attempts
        self._state = ConnectionState.CONNECTING
        if retry:
            return await self._connect_retrying(session_token or token)
        try:
            await self._attempt(session_token or token)
        except BaseException:
            await self._abandon()
            raise

    async def _attempt(self, magic_token: str | None = None) -> None:
        """One try at signing in and connecting, bounded by ``connection_timeout``.

        A failed try leaves no socket open and the state as it was.
        """
        state = self._state
        try:
            await asyncio.wait_for(self._connect(magic_token), self.connection_timeout)
        except BaseException as exc:
            await self._drop_socket()
            self._state = state
            if isinstance(exc, asyncio.TimeoutError):
                raise ConnectionError(
                    f"no answer from {self.server_url} within {self.connection_timeout:g} s"
                ) from None
            raise

    async def _connect(self, magic_token: str | None) -> None:
        magic_token = magic_token or self._magic_token
        if magic_token:
            self._session = await self._redeem(magic_token)
            self._magic_token = ""  # used up: a link works once
            self._keep_session()
        elif self._session is None and self._cache is not None:
            self._session = self._cache.load(self.server_url)
        if self._session is None:
            raise AuthenticationError(
                "not signed in: call login(email), then connect() with the token from the mail"
            )
        await self._drop_socket()  # left over from a connection that ended
        self._refusal = None
        self._bad_greeting = None
        self._lost_before_greeting = False
        self._greeted.clear()
        self._namespace_connected.clear()
        sio = self._sio = self._new_socket()
        try:
            await sio.connect(
                self.server_url, headers=self._headers, transports=["websocket"],
                wait_timeout=self.connection_timeout,
            )
        except (socketio.exceptions.ConnectionError, ValueError) as exc:
            if sio.failed_namespaces:  # reached, then refused: not a network problem
                reason = self._refusal or "the server refused the session"
                raise AuthenticationError(f"the server refused the connection: {reason}",
                                          detail=reason) from exc
            raise ConnectionError(f"cannot reach {self.server_url}: {exc}") from exc
        await self._greeted.wait()
        if self._bad_greeting is not None:
            raise ConnectionError(f"{self.server_url} sent a malformed 'authenticated' event "
                                  f"({self._bad_greeting})", status=502)
        if self._lost_before_greeting:
            raise ConnectionError(f"the connection to {self.server_url} closed before the "
                                  "server signed us in")

    def _keep_session(self) -> None:
        """Store the new session in the cache; a cache we may not use costs only the caching."""
        if self._cache is None or self._session is None:
            return
        try:
            self._cache.save(self.server_url, self._session)
        except ClientError as exc:
            log.warning("signed in, but the session is not kept: %s", exc)

    def _headers(self) -> dict[str, str]:
        # A fresh dict per attempt: engineio consumes the Cookie header it is given.
        return {"Cookie": f"{COOKIE}={self._session}"}

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # unsafe=True: the default jar silently drops cookies of IP-address hosts.
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        return self._http

    def _new_socket(self) -> socketio.AsyncClient:
        # python-socketio's own reconnection stays off: the client runs its own attempts.
        sio = internals.SocketClient(
            on_reserved_event=self._reserved_event, reconnection=False,
            http_session=self._http_session(), handle_sigint=False,
        )

        async def on_disconnect(reason: Any = None) -> None:
            await self._on_disconnect(sio, reason)

        sio.on("connect", self._namespace_connected.set)
        sio.on("connect_error", self._on_connect_error)
        sio.on("disconnect", on_disconnect)
        sio.on("authenticated", self._on_authenticated)
        sio.on("message", self._checked("message", self._on_message))
        sio.on("user_joined", self._checked("user_joined", self._forward("user_joined")))
        sio.on("user_left", self._checked("user_left", self._forward("user_left")))
        sio.on("display_name_changed",
               self._checked("display_name_changed", self._on_display_name_changed))
        sio.on("session_ended", self._checked("session_ended", self._on_session_ended))
        return sio

    async def _drop_socket(self) -> None:
        """Close the socket, even half-way open; its ``disconnect`` is then not a drop."""
        sio, self._sio = self._sio, None
        if sio is not None:
            await sio.disconnect()

    async def _abandon(self) -> None:
        """Close whatever a connect opened, even half-way: a failed connect leaves nothing."""
        try:
            await self._drop_socket()
        finally:
            self._state = ConnectionState.DISCONNECTED
            await self._close_http()

    async def _close_http(self) -> None:
        # Left open, aiohttp warns "Unclosed client session" when the program ends.
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def disconnect(self) -> None:
        """Close the connection; the client does not reconnect until :meth:`connect` is called."""
        was_connected = self._state is ConnectionState.CONNECTED
        await self._reconnector.stop()
        await self._abandon()
        self._user = None
        if was_connected:
            await self._handlers.emit("disconnect", {})

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.disconnect()

    # -- sending --------------------------------------------------------------------------

    async def send(self, content: str) -> dict[str, Any]:
        """Send a chat message; returns the server's acknowledgement or an error dict.

        ``{"status": "ok", "message_id", "timestamp"}`` on success,
        ``{"error", "code"}`` otherwise (408 when no acknowledgement came in time).
        Raises :class:`ConnectionError` if not connected.
        """
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, got {type(content).__name__}")
        return await self._call("message", {"content": content})

    async def set_display_name(self, name: str | None) -> dict[str, Any]:
        """Set (or with None, clear) this connection's display name; kept across reconnects.

        Returns ``{"status": "ok", "display_name"}`` or ``{"error", "code"}``.
        Raises :class:`ConnectionError` if not connected.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        name = (name.strip() or None) if name is not None else None
        ack = await self._call("set_display_name", {"display_name": name})
        if ack.get("status") == "ok":
            self._display_name = name
            if self._user is not None:
                self._user["display_name"] = ack.get("display_name")
        return ack

    async def _call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        sio = self._sio
        if sio is None or not self.connected:
            raise ConnectionError(f"not connected ({self._state.value}); call connect() first")
        try:
            return await self._ack(sio, event, data)
        except socketio.exceptions.BadNamespaceError:
            raise ConnectionError("the connection closed before the message was sent") from None

    async def _ack(self, sio: socketio.AsyncClient, event: str,
                   data: dict[str, Any]) -> dict[str, Any]:
        """Emit and wait for the acknowledgement: 408 when none comes in time."""
        try:
            ack = await sio.call(event, data, timeout=self.connection_timeout)
        except socketio.exceptions.TimeoutError:
            return {"error": f"no acknowledgement within {self.connection_timeout:g} s",
                    "code": 408}
        problem = wire.ack_problem(event, ack)
        if problem is not None:
            self._malformed(f"acknowledgement of {event!r}", problem)
            return {"error": f"the server sent a malformed acknowledgement ({problem})",
                    "code": 502}
        return dict(ack)

    # -- events from python-socketio ------------------------------------------------------

    def _checked(self, event: str, handler: Callable[[dict[str, Any]], Awaitable[None]]
                 ) -> Callable[..., Awaitable[None]]:
        """``handler``, called only with data of the shape docs/protocol.md gives ``event``."""
        async def checked(*args: Any) -> None:
            problem = wire.event_problem(event, args)
            if problem is None:
                await handler(args[0])
            else:
                self._malformed(f"{event!r} event", problem)
        return checked

    def _malformed(self, kind: str, problem: str) -> None:
        """Drop something malformed the server sent: one warning per kind, not per arrival."""
        if kind not in self._malformed_kinds:
            self._malformed_kinds.add(kind)
            log.warning("ignoring a malformed %s from %s (%s); later ones are ignored "
                        "without a warning", kind, self.server_url, problem)

    def _reserved_event(self, name: str) -> None:
        self._malformed(f"{name!r} event", "a name kept for the connection's own events")

    async def _on_connect_error(self, data: Any = None, *more: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            self._refusal = data["message"]
        else:
            self._refusal = data if isinstance(data, str) and data else None

    async def _on_authenticated(self, *args: Any) -> None:
        problem = wire.event_problem("authenticated", args)
        if problem is not None:
            self._greeted_badly(problem)
            return
        data: dict[str, Any] = args[0]
        self._user = {"display_name": None, **data["user"]}
        if self._display_name is not None and self._sio is not None:
            try:
                # Servers send "authenticated" before confirming the namespace: wait for that.
                await asyncio.wait_for(self._namespace_connected.wait(), self.connection_timeout)
                ack = await self._ack(self._sio, "set_display_name",
                                      {"display_name": self._display_name})
            except (asyncio.TimeoutError, socketio.exceptions.BadNamespaceError) as exc:
                ack = {"error": str(exc) or type(exc).__name__, "code": 408}
            if ack.get("status") == "ok":
                self._user["display_name"] = ack.get("display_name")
            else:
                log.warning("could not re-apply display name %r: %s", self._display_name, ack)
        self._state = ConnectionState.CONNECTED
        self._greeted.set()
        await self._handlers.emit("authenticated", data)

    def _greeted_badly(self, problem: str) -> None:
        """A malformed ``authenticated``: fail the attempt under way (502), or drop it."""
        if self._state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            self._bad_greeting = problem
            self._greeted.set()  # the attempt fails at once instead of timing out
        else:  # a second greeting, while connected: like any other malformed event
            self._malformed("'authenticated' event", problem)

    async def _on_message(self, data: dict[str, Any]) -> None:
        message_id = data["id"]
        if message_id in self._seen:
            return
        self._seen[message_id] = None
        if len(self._seen) > SEEN_MESSAGE_IDS:
            self._seen.popitem(last=False)
        await self._handlers.emit("message", data)

    async def _on_display_name_changed(self, data: dict[str, Any]) -> None:
        # The reference shows a top-level display_name; the wire nests it in user.
        await self._handlers.emit("display_name_changed",
                                  {**data, "display_name": data["user"].get("display_name")})

    async def _on_session_ended(self, data: dict[str, Any]) -> None:
        # Logged out elsewhere, ended by the operator, expired: reconnecting cannot help.
        reason = data.get("reason")
        try:
            if self._cache is not None and self._cache.load(self.server_url) == self._session:
                self._cache.remove(self.server_url)  # unless it already holds a newer session
        except AuthenticationError:
            pass  # an unreadable cache holds no session to forget
        self._session = None
        await self._handlers.emit("error", {
            "error": f"session ended: {reason or 'by the server'}; "
                     "sign in again", "code": 401})

    def _forward(self, event: str) -> Any:
        async def forward(data: dict[str, Any]) -> None:
            await self._handlers.emit(event, data)
        return forward

    async def _on_disconnect(self, sio: socketio.AsyncClient, reason: Any = None) -> None:
        """``sio`` closed: a drop, unless the client closed it itself (then it is not ours)."""
        if sio is not self._sio:
            return
        self._sio = None  # python-socketio cleans up after a drop by itself
        self._namespace_connected.clear()
        if self._state is not ConnectionState.CONNECTED:
            self._lost_before_greeting = True
            self._greeted.set()  # the attempt under way fails at once
            return
        if self.reconnect and self.max_reconnect_attempts != 0 and self._session is not None:
            self._state = ConnectionState.RECONNECTING
            log.info("connection to %s lost (%s); reconnecting", self.server_url, reason)
            self._reconnector.start(self._gave_up)
        else:  # not wanted, or the session is over (session_ended)
            self._state = ConnectionState.DISCONNECTED
            self._user = None
            log.info("connection to %s closed (%s)", self.server_url, reason)
            await self._close_http()  # over for good: a later connect() opens a new one
        await self._handlers.emit("disconnect", {})

    # -- reconnecting ---------------------------------------------------------------------

    @property
    def reconnect_attempt(self) -> int:
        """The number of the attempt in progress or coming next while RECONNECTING (or
        while ``connect(retry=True)`` tries again), else 0."""
        return self._reconnector.attempt

    @property
    def next_reconnect_in(self) -> float | None:
        """Seconds until the next attempt, or None when no attempt is waiting."""
        return self._reconnector.next_in

    def reconnect_now(self) -> None:
        """Cut the wait for the next attempt short; nothing when no attempt is waiting."""
        self._reconnector.now()

    def _new_retrying(self) -> Retrying:
        # Read the options now: they may have been changed since the constructor.
        first = self.reconnect_delay
        return Retrying(Backoff(first, max(first, self.reconnect_delay_max)),
                        self.max_reconnect_attempts)

    async def _attempt_to_stay(self, magic_token: str | None) -> None:
        """An attempt of a series: one whose connection dropped again at once has failed."""
        await self._attempt(magic_token)
        if self._state is not ConnectionState.CONNECTED:  # the series goes on: _on_disconnect
            raise ConnectionError(f"the connection to {self.server_url} dropped again")

    async def _gave_up(self, why: Exception) -> None:
        """The attempts after a drop ended without success: over, and handlers hear why."""
        error = reconnection.stopped_trying(why, self.server_url)
        await self._abandon()
        self._user = None
        await self._handlers.emit("error", error)

    async def _connect_retrying(self, magic_token: str | None) -> None:
        try:
            await self._reconnector.connect(magic_token)
        except reconnection.Stopped:  # disconnect() closes everything
            raise ConnectionError(f"stopped connecting to {self.server_url}: "
                                  "disconnect() was called") from None
        except BaseException as exc:
            await self._abandon()
            if isinstance(exc, OutOfAttempts):
                raise ConnectionError(f"could not connect to {self.server_url} after "
                                      f"{exc.attempts + 1} tries: {exc.last}") from exc.last
            raise


async def _problem_detail(resp: aiohttp.ClientResponse) -> str:
    """The ``detail`` of a problem answer, or the status line when there is none."""
    try:
        body = await resp.json(content_type=None)
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, str):
            return detail
    except (ValueError, aiohttp.ClientError):
        pass
    return f"HTTP {resp.status} {resp.reason or ''}".strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
