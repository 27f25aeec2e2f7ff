"""``AsyncClient``: the asyncio Roomz client, on python-socketio and aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import socketio

from . import internals, reconnection, wire
from .backoff import Backoff
from .content import PLAIN
from .durations import duration
from .events import EventHandler, EventHandlers, Turn, Turns
from .exceptions import (
    AuthenticationError,
    ClientError,
    ConnectionError,
    ConnectionStoppedError,
    NotSignedInError,
    NotSupportedError,
    SessionRefusedError,
    SignInFailedError,
)
from .message import Message
from .options import ClientOptions
from .pending_calls import CallLost, PendingCalls
from .pending_sign_in import POLL_PATH, PendingSignIn
from .questions import Answer, AnswerBox, Choice, Question, answer_payload, question_payload
from .recent_ids import RecentIds
from .reconnection import OutOfAttempts, Reconnector, Retrying
from .send_once import MAX_KEY_LENGTH, SEND_ONCE, is_key
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
#: The largest WebSocket message accepted: a ``history`` answer of 1000 long messages fits.
MAX_SERVER_MESSAGE_BYTES = 16 * 1024 * 1024
#: A server that still says "pending" this long after its link expired is not believed.
SIGN_IN_SLACK_SECONDS = 30.0
#: What the server acknowledges, by the event sent, as an error about it names it.
ACKNOWLEDGED = {"message": "the message", "set_display_name": "the display name",
                "who": "the request for the connections", "history": "the request for history"}


class AsyncClient(ClientOptions):
    """Primary async WebSocket client for Roomz real-time chat.

    ``session_token`` is a magic-link token (from the sign-in mail); it is redeemed
    by :meth:`connect`. With ``session_cache_file`` the resulting session is kept
    there, so later runs connect without a new token. The parameters are those of
    :class:`~roomz.options.ClientOptions`.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._magic_token = self.session_token
        self._cache = SessionCache(self.session_cache_file) if self.session_cache_file else None
        self._session: str | None = None
        self._handlers = EventHandlers()
        self._turns = Turns()  # the server's events reach handlers in the order they came
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
        self._seen: RecentIds[None] = RecentIds(SEEN_MESSAGE_IDS)  # so that none comes twice
        self._malformed_kinds: set[str] = set()  # logged once each, then dropped quietly
        self._sign_in: PendingSignIn | None = None  # of the last login(), while it waits
        self._sign_in_offered: bool | None = None  # did the last login() get one? None: no login
        self._sign_in_changed = asyncio.Event()  # a login(), or a token redeemed meanwhile
        self._waiting_for_sign_in = False
        self._signed_in_by_token = False  # connect(token) succeeded while a wait was on
        self._no_connect_under_way = asyncio.Event()  # cleared while a connect() runs
        self._no_connect_under_way.set()
        self._reconnector = Reconnector(self._attempt_to_stay, self._new_retrying)
        # The history extension: where the handlers stand in the user's history, and what
        # the server said of its history when it last greeted us.
        self._cursor: str | None = None
        self._history: dict[str, Any] | None = None
        self._said_no_replay = False
        self._features: frozenset[str] = frozenset()  # the server's extensions, if it names them
        self._answers = AnswerBox()  # answers heard, for ask()
        self._calls = PendingCalls()  # sent, waiting for their acknowledgement

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

    @property
    def cursor(self) -> str | None:
        """Where this client stands in its user's history (extension): the ``cursor`` of the
        last message its handlers saw, or None. Every connect and reconnect asks the server
        for the messages after it, which handlers then get first, flagged ``"replayed"``.
        Set it before :meth:`connect` to resume from a point kept elsewhere (a bot's store)."""
        return self._cursor

    @cursor.setter
    def cursor(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"cursor must be a str or None, got {type(value).__name__}")
        self._cursor = value

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
        with self._translated():
            # aiohttp.request: a session of its own, closed with the request, so that a
            # program that only logs in leaves nothing open at exit.
            async with aiohttp.request(
                "POST", f"{self.server_url}/auth/request-magic-link", json={"email": email},
                timeout=aiohttp.ClientTimeout(total=self.connection_timeout),
            ) as resp:
                if resp.status == 200:
                    self._offered(await _json_or_none(resp))
                    return True
                detail = await _problem_detail(resp)
        raise ConnectionError(f"login failed: {detail}", detail=detail, status=resp.status)

    async def _redeem(self, token: str) -> str:
        """Trade a magic-link token for a session token (the ``session_token`` cookie)."""
        with self._translated():
            async with aiohttp.request(
                "GET", f"{self.server_url}/auth/verify", params={"token": token},
                allow_redirects=False, timeout=aiohttp.ClientTimeout(total=self.connection_timeout),
            ) as resp:
                morsel = resp.cookies.get(COOKIE)
                location = resp.headers.get("Location", "")
        if morsel is None or not morsel.value:
            code = location.partition("error=")[2] or f"HTTP {resp.status}"
            reason = SIGN_IN_ERRORS.get(code, f"the server did not sign us in ({code})")
            raise SignInFailedError(f"sign-in failed: {reason}", detail=reason,
                                    status=resp.status)
        if self._waiting_for_sign_in:  # a pasted token ends the wait: we are signed in
            self._signed_in_by_token = True
            self._sign_in_changed.set()
        self._sign_in = None
        return morsel.value

    # -- signing in by confirming the link (the sign_in extension) -------------------------

    def _offered(self, body: Any) -> None:
        """Keep the sign-in the server offered with its link, if it did."""
        self._sign_in = PendingSignIn.from_answer(body)
        self._sign_in_offered = self._sign_in is not None
        self._sign_in_changed.set()

    @property
    def sign_in_code(self) -> str | None:
        """The code to show the person while :meth:`wait_for_sign_in` can wait for the link
        of the last :meth:`login` (such as ``WDJB-MJHT``), else None: no login yet, a server
        without the extension, or a sign-in that is over (signed in, expired, refused)."""
        pending = self._sign_in
        return pending.code if pending is not None and not pending.expired else None

    async def wait_for_sign_in(self) -> None:
        """Wait until the link of the last :meth:`login` is confirmed in a browser (with the
        code :attr:`sign_in_code`), keep the new session (session cache), then connect as
        :meth:`connect` does. A connection already open is closed first: the new session
        replaces it.

        Polls the server every few seconds (as it asks). Returns early, without a session
        of its own, when :meth:`connect` with a token signs this client in meanwhile; it
        then waits for that connect and returns once connected.
        Raises :class:`AuthenticationError` when the link expired, was used elsewhere (to
        sign in a browser, or with its token) or was used up by wrong codes (``detail``
        says which); :class:`ConnectionError` when the server cannot be reached for longer
        than ``connection_timeout`` at a time (the sign-in stays pending: call again), or
        when there is no sign-in to wait for (no :meth:`login`, or a server without this
        extension: connect with the token from the mail instead). Cancelling it stops the
        polling and leaves the sign-in pending.
        """
        if self._sign_in is None:
            raise ConnectionError(self._nothing_to_wait_for())
        if self._waiting_for_sign_in:
            raise ConnectionError("already waiting for the sign-in; wait_for_sign_in() runs "
                                  "once at a time")
        self._waiting_for_sign_in, self._signed_in_by_token = True, False
        try:
            session = await self._poll_sign_in()
        finally:
            self._waiting_for_sign_in = False
        if session is None:  # a pasted token signed us in: its connect() connects
            await self._await_connect_under_way()
            return
        self._magic_token = ""  # the new session supersedes a token never used
        self._session = session
        self._keep_session()
        if self._state is not ConnectionState.DISCONNECTED:
            await self.disconnect()
        await self.connect()

    def _nothing_to_wait_for(self) -> str:
        if self._sign_in_offered is None:
            return "no sign-in is waiting: call login(email) first"
        if self._sign_in_offered:
            return "the sign-in is over: call login(email) again"
        return (f"{self.server_url} does not support confirming the link in a browser: "
                "connect() with the token from the mail")

    async def _poll_sign_in(self) -> str | None:
        """Poll until the pending sign-in is approved: its session, or None when a pasted
        token signed us in meanwhile."""
        failing_since: float | None = None
        timeout = aiohttp.ClientTimeout(total=self.connection_timeout)
        async with aiohttp.ClientSession(timeout=timeout,
                                         cookie_jar=aiohttp.DummyCookieJar()) as http:
            while True:
                self._sign_in_changed.clear()
                pending = self._sign_in  # a later login() replaces it: follow the latest
                if self._signed_in_by_token:
                    return None
                if pending is None:
                    raise ConnectionError(self._nothing_to_wait_for())
                if time.monotonic() > pending.expires_at + SIGN_IN_SLACK_SECONDS:
                    self._sign_in = None
                    raise SignInFailedError(
                        "sign-in failed: the link expired before it was confirmed",
                        detail="The sign-in link expired. Request a new link.", status=410)
                try:
                    answer = await self._poll_once(http, pending)
                except AuthenticationError:
                    if self._signed_in_by_token:  # our own pasted token used the link
                        return None
                    if self._sign_in is not None and self._sign_in is not pending:
                        continue  # a later login() replaced the sign-in that ended
                    raise
                except _Unanswered as exc:  # try again, as long as it does not last
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > self.connection_timeout:
                        raise ConnectionError(str(exc)) from None
                    await self._pause_sign_in(pending.interval)
                    continue
                failing_since = None
                if isinstance(answer, str):
                    return answer
                await self._pause_sign_in(answer)

    async def _poll_once(self, http: aiohttp.ClientSession,
                         pending: PendingSignIn) -> str | float:
        """One poll: the session once approved, else the seconds to wait before the next.
        Raises :class:`_Unanswered` when the server could not be reached or could not
        answer, and :class:`AuthenticationError` when the sign-in is over."""
        try:
            with self._translated():
                async with http.post(f"{self.server_url}{POLL_PATH}",
                                     json={"id": pending.id}) as resp:
                    if resp.status == 200:
                        body = await _json_or_none(resp)
                        morsel = resp.cookies.get(COOKIE)
                    else:
                        detail = await _problem_detail(resp)
        except ConnectionError as exc:  # not reached this time: worth polling again
            raise _Unanswered(str(exc)) from exc
        if resp.status == 200:
            status = body.get("status") if isinstance(body, dict) else None
            if status == "pending":
                return pending.interval
            if status == "ok" and morsel is not None and morsel.value:
                if self._sign_in is pending:
                    self._sign_in = None
                return morsel.value
            raise ConnectionError(f"{self.server_url} answered the sign-in poll with something "
                                  f"malformed ({str(body)[:80]!r})", status=502)
        if resp.status == 429:  # polled too soon (two clients on one id, or a clock jump)
            return max(pending.interval, _seconds(resp.headers.get("Retry-After")))
        if resp.status >= 500:
            raise _Unanswered(f"{self.server_url} cannot answer just now: {detail}")
        if self._sign_in is pending:
            self._sign_in = None
        raise SignInFailedError(f"sign-in failed: {detail}", detail=detail,
                                status=resp.status)

    async def _pause_sign_in(self, seconds: float) -> None:
        """Wait ``seconds`` before the next poll, or less if a login() or a token changed
        what we wait for."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._sign_in_changed.wait(), seconds)

    async def _await_connect_under_way(self) -> None:
        """After a pasted token signed us in: wait for its connect(); connect ourselves when
        that one failed after the token was redeemed (the session is known by then)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._no_connect_under_way.wait(), self.connection_timeout + 1)
        if not self.connected:
            await self.connect()

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
        self._no_connect_under_way.clear()
        try:
            await self._connect_stoppably(session_token or token, retry)
        finally:
            self._no_connect_under_way.set()

    async def _attempt(self, magic_token: str | None = None) -> None:
        """One try at signing in and connecting, bounded by ``connection_timeout``.

        A failed try leaves no socket open and the state as it was.
        """
        state = self._state
        try:
            with self._translated():
                await asyncio.wait_for(self._connect(magic_token), self.connection_timeout)
        except BaseException:
            await self._drop_socket()
            self._state = state
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
            raise NotSignedInError(
                "not signed in: call login(email), then connect() with the token from the mail"
            )
        await self._drop_socket()  # left over from a connection that ended
        self._refusal = None
        self._bad_greeting = None
        self._lost_before_greeting = False
        self._greeted.clear()
        self._namespace_connected.clear()
        sio = self._sio = self._new_socket()
        with self._translated(connecting=sio):
            await sio.connect(
                self.server_url, headers=self._headers, transports=["websocket"],
                wait_timeout=self.connection_timeout, auth=self._auth(),
            )
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

    def _auth(self) -> dict[str, Any]:
        """The CONNECT payload (servers without the extensions ignore it): what this client
        is, for ``who``, and where to resume the history."""
        client = {"kind": self.kind, **({"name": self.name} if self.name else {})}
        return {"client": client, "history": {"after": self._cursor}}

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
            websocket_extra_options={"max_msg_size": MAX_SERVER_MESSAGE_BYTES},
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
        sio.on("replay", self._checked("replay", self._on_replay))
        return sio

    async def _drop_socket(self) -> None:
        """Close the socket, even half-way open; its ``disconnect`` is then not a drop."""
        sio, self._sio = self._sio, None
        if sio is not None:
            self._calls.lost(sio, "the connection was closed")  # no acknowledgement can come
            await sio.disconnect()

    async def _abandon(self) -> None:
        """Close whatever a connect opened, even half-way: a failed connect leaves nothing,
        not even the user of a connection that was up before it."""
        try:
            await self._drop_socket()
        finally:
            self._state = ConnectionState.DISCONNECTED
            self._user = None
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
        if was_connected:
            await self._handlers.emit("disconnect", {})

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    # -- sending --------------------------------------------------------------------------

    async def send(self, content: str, *, content_type: str | None = None,
                   subject: str | None = None, language: str | None = None,
                   key: str | None = None) -> dict[str, Any]:
        """Send a chat message; returns the server's acknowledgement or an error dict.

        ``{"status": "ok", "message_id", "timestamp"}`` on success,
        ``{"error", "code"}`` otherwise (408 when no acknowledgement came in time, or the
        connection closed before it came: then at once; the message may have arrived).
        Raises :class:`ConnectionError` if not connected.

        ``content_type`` (``text/markdown``, ``text/code``, ``text/diff``), ``subject``
        (shown collapsed under it) and ``language`` (of code) are an extension of our
        server's (``Markdown(...).fields()`` of :mod:`roomz.content` gives them); other
        servers deliver the text alone.

        ``key`` (1-100 characters, say a UUID) names this message so that sending it again
        with the same key after a 408 or a dropped link says it once: the server answers
        the first send's acknowledgement, with ``"duplicate": True``. It goes out only to a
        server that offers it (``supports("send_once")``: ours, with history on); to
        others the message goes without it, and a send again may say it twice.
        """
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, got {type(content).__name__}")
        if key is not None and not is_key(key):
            raise ValueError(f"key must be a str of 1-{MAX_KEY_LENGTH} characters, "
                             f"got {key!r:.60}")
        payload: dict[str, Any] = {"content": content}
        for name, value in (("content_type", content_type), ("subject", subject),
                            ("language", language)):
            if value is not None:
                payload[name] = value
        if payload.get("content_type") == PLAIN:
            del payload["content_type"]  # the default: the published protocol's own message
        if key is not None and SEND_ONCE in self._features:
            payload["key"] = key
        return await self._call("message", payload)

    # -- questions and who (extensions) ----------------------------------------------------

    async def ask(self, question: str, answers: Sequence[str | Choice], *,
                  timeout: float = 300.0, default: str | Sequence[str] | None = None,
                  multi_select: bool = False, timeout_message: str | None = None,
                  subject: str | None = None,
                  on_asked: Callable[[Question], object] | None = None) -> Answer:
        """Ask the user's connections ``question``, offering ``answers`` (labels, or
        :class:`roomz.questions.Choice`), and return the first :class:`Answer`.

        After ``timeout`` seconds without one, the server closes the question and answers
        with ``default`` (a label or id; None: nothing chosen), as a timed-out
        :class:`Answer`; so does this client when it heard nothing by then (it was away).
        ``on_asked(question)`` is called once the server has taken the question, with its
        id, before the wait: a program that may stop meanwhile can note what it asked.
        Raises :class:`NotSupportedError` on a server without questions (the published
        one), :class:`ClientError` when the server refuses the question (``status`` 400
        names the field), :class:`ConnectionError` when not connected.
        """
        asked = await self._ask(question, answers, timeout=timeout, default=default,
                                multi_select=multi_select, timeout_message=timeout_message,
                                subject=subject)
        if on_asked is not None:
            on_asked(asked)
        return await self._answers.first(asked, timeout + self.connection_timeout)

    async def poll(self, question: str, answers: Sequence[str | Choice], *,
                   timeout: float = 60.0, multi_select: bool = False,
                   subject: str | None = None,
                   on_asked: Callable[[Question], object] | None = None) -> list[Answer]:
        """Ask ``question`` and collect every answer (one per connection) until ``timeout``
        seconds have passed: a poll. ``on_asked`` and what it raises: as for :meth:`ask`."""
        asked = await self._ask(question, answers, timeout=timeout, multi_select=multi_select,
                                keep_open=True, subject=subject)
        if on_asked is not None:
            on_asked(asked)
        return await self._answers.all(asked, timeout + self.connection_timeout)

    async def _ask(self, question: str, answers: Sequence[str | Choice],
                   **options: Any) -> Question:
        self._require("questions", "questions")
        payload, asked = question_payload(question, answers, **options)
        ack = await self._call("message", payload)
        if "error" in ack:
            # No acknowledgement in time (408) is no refusal: the server may have taken it.
            outcome = "may not have been asked" if ack.get("code") == 408 else "was not asked"
            raise ClientError(f"the question {outcome}: {ack['error']}",
                              detail=str(ack["error"]), status=ack.get("code"))
        return dataclasses.replace(asked, id=ack["message_id"])

    async def answer(self, question: Question | Message | Mapping[str, Any] | str,
                     chosen: str | Sequence[str], *,
                     free_text: str | None = None) -> dict[str, Any]:
        """Answer ``question`` (its message, or its id) with ``chosen``: the label or id of
        one answer, or several for a multi-select question; ``free_text`` for an answer
        that takes it. Returns the acknowledgement as :meth:`send` does; an unknown or
        closed question gets ``{"error", "code": 404 or 410}``.
        Raises :class:`NotSupportedError` on a server without questions, ``ValueError``
        for a choice the question does not offer.
        """
        self._require("questions", "questions")
        if isinstance(question, Message):
            question = question.raw
        if isinstance(question, Mapping):
            parsed = Question.of(question)
            if parsed is None:
                raise ValueError("that message asks no question")
            question = parsed
        return await self._call("message", answer_payload(question, chosen,
                                                          free_text=free_text))

    async def who(self) -> list[dict[str, Any]]:
        """The user's connections: ``connection_id``, ``kind`` (terminal, page, bot,
        script, or None when it did not say), ``name``, ``display_name`` (escaped, as on
        the wire), ``since`` and ``you`` (this one). Raises :class:`NotSupportedError` on
        a server without ``who``, :class:`ClientError` when it refuses."""
        self._require("who", "listing connections")
        ack = await self._call("who", {})
        if "error" in ack:
            raise ClientError(f"who failed: {ack['error']}", detail=str(ack["error"]),
                              status=ack.get("code"))
        return [c for c in ack["connections"] if isinstance(c, dict)]

    def supports(self, feature: str) -> bool:
        """True when the connected server names ``feature`` (``content_types``,
        ``questions``, ``who``, ``send_once``) among its extensions."""
        return feature in self._features

    def _require(self, feature: str, what: str) -> None:
        if self.connected and feature not in self._features:
            raise NotSupportedError(f"the server at {self.server_url} does not support "
                                    f"{what} (an extension of roomz-server; the published "
                                    "0.4.0 server lacks it)")

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
        with self._translated():
            return await self._ack(sio, event, data)

    async def _ack(self, sio: socketio.AsyncClient, event: str,
                   data: dict[str, Any]) -> dict[str, Any]:
        """Emit and wait for the acknowledgement: 408 when none comes in time, or when the
        connection closes first (the server may have had it all the same)."""
        try:
            ack = await self._calls.call(sio, event, data, self.connection_timeout)
        except asyncio.TimeoutError:
            return {"error": f"no acknowledgement within {self.connection_timeout:g} s",
                    "code": 408}
        except CallLost as lost:
            return {"error": f"{lost} before the server acknowledged "
                             f"{ACKNOWLEDGED.get(event, repr(event))}", "code": 408}
        problem = wire.ack_problem(event, ack)
        if problem is not None:
            self._malformed(f"acknowledgement of {event!r}", problem)
            return {"error": f"the server sent a malformed acknowledgement ({problem})",
                    "code": 502}
        return dict(ack)

    # -- errors from below ----------------------------------------------------------------

    @contextlib.contextmanager
    def _translated(self, connecting: socketio.AsyncClient | None = None) -> Iterator[None]:
        """The one place where errors of aiohttp, python-socketio and the network become
        the client's own (:mod:`roomz.exceptions`), as httpx translates httpcore's.

        ``connecting``: the socket being connected, if any; its refused namespace means the
        server was reached and would not sign us in.
        """
        try:
            yield
        except ClientError:
            raise  # ours already
        except asyncio.TimeoutError:  # before OSError: on 3.11+ it is the built-in one
            raise ConnectionError(f"no answer from {self.server_url} within "
                                  f"{self.connection_timeout:g} s") from None
        except socketio.exceptions.BadNamespaceError:  # it closed between the check and emit
            raise ConnectionError("the connection closed before the message was sent") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionError(f"cannot reach {self.server_url}: {_describe(exc)}") from exc
        except (socketio.exceptions.ConnectionError, ValueError) as exc:
            if connecting is None:
                raise  # a ValueError of ours: a bug, not the network
            if connecting.refused():  # reached, then refused: not a network problem
                reason = self._refusal or "the server refused the session"
                raise SessionRefusedError(f"the server refused the connection: {reason}",
                                          detail=reason) from exc
            raise ConnectionError(f"cannot reach {self.server_url}: {_describe(exc)}") from exc

    # -- events from python-socketio ------------------------------------------------------

    def _checked(self, event: str, handler: Callable[[dict[str, Any], Turn], Awaitable[None]]
                 ) -> Callable[..., Awaitable[None]]:
        """``handler``, called only with data of the shape docs/protocol.md gives ``event``,
        and with the event's turn to call the handlers registered with :meth:`on`."""
        async def checked(*args: Any) -> None:
            with self._turns.take() as turn:  # before any await: the order events came in
                problem = wire.event_problem(event, args)
                if problem is None:
                    await handler(args[0], turn)
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
        with self._turns.take() as turn:  # before any await: later events wait for it
            await self._greeted_by(args, turn)

    async def _greeted_by(self, args: tuple[Any, ...], turn: Turn) -> None:
        problem = wire.event_problem("authenticated", args)
        if problem is not None:
            self._greeted_badly(problem)
            return
        data: dict[str, Any] = args[0]
        self._user = {"display_name": None, **data["user"]}
        self._resumed(data.get("history"))
        self._features = frozenset(f for f in data.get("features") or () if isinstance(f, str))
        sio = self._sio
        if self._display_name is not None and sio is not None:
            try:
                with self._translated():
                    # Servers send "authenticated" before confirming the namespace: wait.
                    await asyncio.wait_for(self._namespace_connected.wait(),
                                           self.connection_timeout)
                    ack = await self._ack(sio, "set_display_name",
                                          {"display_name": self._display_name})
            except ConnectionError as exc:
                ack = {"error": str(exc), "code": 408}
            if self._sio is not sio:  # the attempt was given up meanwhile: nobody is greeted
                return
            if ack.get("status") == "ok":
                self._user["display_name"] = ack.get("display_name")
            else:
                log.warning("could not re-apply display name %r: %s", self._display_name, ack)
        self._state = ConnectionState.CONNECTED
        self._greeted.set()  # connect() returns even while earlier events' handlers run
        await turn.come()
        await self._handlers.emit("authenticated", data)

    def _greeted_badly(self, problem: str) -> None:
        """A malformed ``authenticated``: fail the attempt under way (502), or drop it."""
        if self._state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            self._bad_greeting = problem
            self._greeted.set()  # the attempt fails at once instead of timing out
        else:  # a second greeting, while connected: like any other malformed event
            self._malformed("'authenticated' event", problem)

    async def _on_message(self, data: dict[str, Any], turn: Turn) -> None:
        fresh = await self._heard(data)
        await turn.come()
        await self._deliver(data, fresh)

    async def _heard(self, message: dict[str, Any]) -> bool:
        """Note ``message`` as it arrives: False if it came before. An answer goes to
        ``ask()`` at once, without waiting for its turn: a handler may be asking."""
        if message["id"] in self._seen:
            return False
        self._seen.remember(message["id"])
        if "answer_to" in message:  # an answer to a question, maybe one ask() waits for
            await self._answers.heard(message)
        return True

    async def _deliver(self, message: dict[str, Any], fresh: bool) -> None:
        """Hand ``message`` to the handlers unless it came before; move the cursor past it."""
        if fresh:
            await self._handlers.emit("message", message)
        cursor = message.get("cursor")
        if isinstance(cursor, str):
            self._cursor = cursor

    # -- the history extension ------------------------------------------------------------

    def _resumed(self, history: Any) -> None:
        """What the greeting says of the history: the replay to come, or none at all."""
        self._history = history if isinstance(history, dict) else None
        if self._history is None:
            if not self._said_no_replay:
                self._said_no_replay = True
                log.info("%s keeps no message history: messages sent while this client is "
                         "disconnected are not replayed", self.server_url)
            return
        missed = self._history.get("missed", 0)
        if self._history.get("complete") is False:
            seconds, window = self._history.get("seconds"), "a while"
            if isinstance(seconds, (int, float)) and math.isfinite(seconds):  # not required
                window = duration(seconds)
            log.warning("some messages sent while this client was away are gone: %s keeps "
                        "the last %d, for %s; %d of them are replayed", self.server_url,
                        self._history["messages"], window, missed)
        head = self._history.get("cursor")
        if not missed and isinstance(head, str):  # else the last replayed message moves it
            self._cursor = head

    async def _on_replay(self, data: dict[str, Any], turn: Turn) -> None:
        replayed = [{**message, "replayed": True} for message in data["messages"]]
        fresh = [await self._heard(message) for message in replayed]
        await turn.come()
        for message, new in zip(replayed, fresh, strict=True):
            await self._deliver(message, new)

    async def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` messages of the user's history, oldest first (extension).

        Each is a ``message`` event's data with ``"replayed": True``. A server without
        history (the published one, or ours with history off) has none: ``[]``.
        At most as many as the server keeps (1000 by default).
        Raises :class:`ConnectionError` if not connected, or with the server's reason when
        it cannot answer.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
        if not self.connected:
            raise ConnectionError(f"not connected ({self._state.value}); call connect() first")
        if self._history is None:
            return []
        ack = await self._call("history", {"limit": min(limit, self._history["messages"])})
        if "error" in ack:
            raise ConnectionError(f"history unavailable: {ack['error']}", detail=ack["error"],
                                  status=ack["code"])
        return list(ack["messages"])

    async def _on_display_name_changed(self, data: dict[str, Any], turn: Turn) -> None:
        await turn.come()
        # The reference shows a top-level display_name; the wire nests it in user.
        await self._handlers.emit("display_name_changed",
                                  {**data, "display_name": data["user"].get("display_name")})

    async def _on_session_ended(self, data: dict[str, Any], turn: Turn) -> None:
        # Logged out elsewhere, ended by the operator, expired: reconnecting cannot help.
        reason = data.get("reason")
        try:
            if self._cache is not None and self._cache.load(self.server_url) == self._session:
                self._cache.remove(self.server_url)  # unless it already holds a newer session
        except AuthenticationError:
            pass  # an unreadable cache holds no session to forget
        self._session = None
        await turn.come()
        await self._handlers.emit("error", {
            "error": f"session ended: {reason or 'by the server'}; "
                     "sign in again", "code": 401})

    def _forward(self, event: str) -> Any:
        async def forward(data: dict[str, Any], turn: Turn) -> None:
            await turn.come()
            await self._handlers.emit(event, data)
        return forward

    async def _on_disconnect(self, sio: socketio.AsyncClient, reason: Any = None) -> None:
        """``sio`` closed: a drop, unless the client closed it itself (then it is not ours)."""
        if sio is not self._sio:
            return
        with self._turns.take() as turn:  # "disconnect" after the handlers of what came before
            await self._dropped(sio, reason, turn)

    async def _dropped(self, sio: socketio.AsyncClient, reason: Any, turn: Turn) -> None:
        self._sio = None  # python-socketio cleans up after a drop by itself
        self._namespace_connected.clear()
        # Their acknowledgements cannot come now; the callers resume once the state is set.
        self._calls.lost(sio, "the connection was lost")
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
        await turn.come()
        await self._handlers.emit("disconnect", {})

    # -- reconnecting ---------------------------------------------------------------------

    @property
    def reconnect_attempt(self) -> int:
        """The number of the attempt in progress or coming next while RECONNECTING (or
        while ``connect(retry=True)`` tries again), else 0."""
        # Connected, the attempt is over, though its series ends a few steps later.
        return 0 if self.connected else self._reconnector.attempt

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
        await self._handlers.emit("error", error)

    async def _connect_stoppably(self, magic_token: str | None, retry: bool) -> None:
        """connect()'s tries, run by the reconnector so that disconnect() stops them."""
        try:
            await self._reconnector.connect(magic_token, retry=retry)
        except reconnection.Stopped:  # disconnect() closes everything
            raise ConnectionStoppedError(f"stopped connecting to {self.server_url}: "
                                         "disconnect() was called") from None
        except BaseException as exc:
            await self._abandon()
            if isinstance(exc, OutOfAttempts):
                if not retry:  # the one try's own error
                    raise exc.last from exc.last.__cause__
                raise ConnectionError(f"could not connect to {self.server_url} after "
                                      f"{exc.attempts + 1} tries: {exc.last}") from exc.last
            raise


async def _problem_detail(resp: aiohttp.ClientResponse) -> str:
    """The ``detail`` of a problem answer, or the status line when there is none."""
    body = await _json_or_none(resp)
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    return f"HTTP {resp.status} {resp.reason or ''}".strip()


class _Unanswered(Exception):
    """A sign-in poll that got no answer: the server could not be reached, or failed."""


async def _json_or_none(resp: aiohttp.ClientResponse) -> Any:
    """The response's JSON body, or None when it has none."""
    try:
        return await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return None


def _seconds(value: str | None, most: float = 60.0) -> float:
    """A ``Retry-After`` in seconds, within reason; 0 when absent or malformed."""
    try:
        return min(max(float(value or 0), 0.0), most)
    except ValueError:
        return 0.0


def _describe(exc: BaseException) -> str:
    """What went wrong, in a few words: the error's message, else its kind."""
    return str(exc) or type(exc).__name__
