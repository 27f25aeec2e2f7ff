"""The terminal's own connection: kept up for as long as the terminal runs, never misleading.

- With a cached session it connects in the background, and keeps trying on a capped
  backoff for as long as the server cannot be reached (``connect(retry=True)``); after a
  drop the client reconnects on the same backoff, without a limit. Only a session the
  server refuses ends the trying: the one case in which the terminal says "not signed in"
  although it holds a session.
- ``/login`` shows the code from the server and waits in the background for someone to
  confirm the link in a browser (``wait_for_sign_in()``); then the terminal is signed in.
- ``/token`` redeems the token on a second client while a connection (or an attempt) is
  open, and swaps the two only once it is signed in: a mistyped token leaves a working
  connection as it was.
- ``/reconnect`` tries at once.

The toolbar's first two parts (:meth:`Connection.status`, :meth:`Connection.who`) say
where the connection stands.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from roomz import AsyncClient, AuthenticationError, ClientError, ConnectionState
from roomz.events import EventHandler
from roomz.reconnection import worth_retrying
from roomz.session_cache import SessionCache

from . import DEFAULT_RECONNECT_MAX_DELAY, words
from .render import user_label

#: Seconds between two waits for a sign-in whose server could not be reached for a while.
SIGN_IN_RETRY = 5.0
#: Options a second client (for ``/token``) takes over from the one it may replace.
CLIENT_OPTIONS = ("reconnect", "reconnect_delay", "reconnect_delay_max",
                  "max_reconnect_attempts", "connection_timeout")

#: Shows one line: ``say(text, kind)`` with kind system, good, warning or error.
Say = Callable[[str, str], None]


class Connection:
    """The terminal's client, and what keeps it connected and signed in.

    ``handlers`` (event name to handler) are attached to every client this connection
    uses; ``greeted(client, data)`` runs at each ``authenticated``, with the client it came
    from (a ``/token`` greets a new client before it replaces the one in use);
    ``signed_in()`` is awaited each time a sign-in or a first connect succeeds.
    """

    def __init__(self, server_url: str, session_file: Path, *, say: Say,
                 handlers: Mapping[str, EventHandler],
                 greeted: Callable[[AsyncClient, dict[str, Any]], None],
                 signed_in: Callable[[], Awaitable[None]],
                 reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY) -> None:
        self.server_url = server_url
        self.session_file = session_file
        self.reconnect_max_delay = reconnect_max_delay
        self._say = say
        self._handlers = dict(handlers)
        self._greeted = greeted
        self._signed_in = signed_in
        self._attached: dict[AsyncClient, list[tuple[str, EventHandler]]] = {}
        #: The email of the last ``/login``, for the words that ask for a new link.
        self.email: str | None = None
        #: Why the server refused the session; then the terminal is "not signed in".
        self.refused: str | None = None
        self._has_session = False  # a session is cached, or was signed in with, this run
        self._last_user: dict[str, Any] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._waiting: asyncio.Task[None] | None = None
        self._lost_at: float | None = None  # time.monotonic() of the drop, while away
        #: The client in use; ``/token`` may replace it with another.
        self.client = self._new_client()

    # -- the toolbar -----------------------------------------------------------------------

    def status(self) -> str:
        """``connected``, ``reconnecting (attempt 3, next in 4 s)``, ``connecting`` or
        ``disconnected``."""
        client = self.client
        state, attempt = client.connection_state, client.reconnect_attempt
        if attempt and state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            wait = client.next_reconnect_in
            when = "trying now" if wait is None else f"next in {math.ceil(wait)} s"
            return f"reconnecting (attempt {attempt}, {when})"
        return state.value

    def who(self) -> str:
        """Who the terminal is signed in as, and the sign-in it waits for, if any."""
        parts = []
        user = self.client.user or (self._last_user if self.signed_in else None)
        if user:
            parts.append(user_label(user))
        if (code := self.sign_in_code) is not None:
            parts.append(f"waiting for sign-in (code {code})")
        if not parts:
            parts.append("cached session" if self.signed_in else "not signed in")
        return " · ".join(parts)

    @property
    def signed_in(self) -> bool:
        """True while the terminal holds a session that the server has not refused."""
        return self._has_session and self.refused is None

    @property
    def sign_in_code(self) -> str | None:
        """The code to enter on the link's page while the terminal waits for it, else None."""
        if self._waiting is None or self._waiting.done():
            return None
        return self.client.sign_in_code

    def not_connected(self) -> str:
        """Why a message cannot go now, and what to do about it."""
        status = self.status()
        if status.startswith("reconnecting"):
            return f"{status}; /reconnect tries now"
        if self.client.connection_state is ConnectionState.CONNECTING:
            return f"still connecting to {self.server_url}"
        if not self.signed_in:
            return f"not signed in: {words.LOGIN} first"
        return "disconnected: /reconnect connects again"

    # -- connecting ------------------------------------------------------------------------

    def resume(self) -> None:
        """Connect with the cached session in the background; without one, say how to sign in."""
        try:
            session = SessionCache(self.session_file).load(self.server_url)
        except AuthenticationError as exc:
            self._say(words.session_cache(str(exc)), "warning")
            return
        if session is None:
            self._say(words.SIGN_IN_HELP, "warning")
            return
        self._has_session = True
        self._connect_in_background()

    def reconnect(self) -> None:
        """``/reconnect``: try at once, or connect again after the connection ended."""
        client = self.client
        if client.connected:
            self._say(f"Already connected to {self.server_url}.", "system")
        elif client.next_reconnect_in is not None:
            client.reconnect_now()
            self._say(f"Trying to reach {self.server_url} now…", "system")
        elif client.connection_state is ConnectionState.DISCONNECTED:
            self._say(f"Connecting to {self.server_url}…", "system")
            self._connect_in_background()
        else:
            self._say(f"Already trying to reach {self.server_url}: this attempt is under way.",
                      "system")

    def _connect_in_background(self) -> None:
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._keep_connecting(self.client))

    async def _keep_connecting(self, client: AsyncClient) -> None:
        """Connect ``client``; while the server cannot be reached, say so once and keep trying."""
        try:
            try:
                await client.connect()
            except ClientError as exc:
                if not worth_retrying(exc):
                    raise
                if client is self.client:
                    self._say(f"{self._away(exc)}; trying again by itself "
                              "(/reconnect tries now).", "warning")
                await client.connect(retry=True)
        except ClientError as exc:
            if client is self.client and not client.connected and not words.is_stopped(exc):
                self._connect_failed(exc)
            return
        if client is self.client:
            await self._signed_in()

    def _away(self, exc: ClientError) -> str:
        """Why an attempt that is worth another failed: the server is away, or busy."""
        if isinstance(exc, AuthenticationError):  # refused for capacity, not for the session
            return f"{self.server_url} is busy ({exc.detail or exc})"
        return words.unreachable(self.server_url, exc)

    def _connect_failed(self, exc: ClientError, prefix: str = "") -> None:
        """Say why connecting failed for good (``prefix`` first), and what to do."""
        if words.is_no_session(exc):
            self._has_session = False
        elif words.is_refusal(exc):
            self.refused = exc.detail or str(exc)
        said = words.connect_failed(self.server_url, exc)
        self._say(prefix + words.after_colon(said) if prefix else said, "error")

    # -- signing in ------------------------------------------------------------------------

    async def login(self, email: str) -> None:
        """``/login``: ask for a link; show the code and wait for it in the background."""
        client = self.client
        try:
            await client.login(email)
        except ClientError as exc:
            self._say(words.login_failed(self.server_url, exc), "error")
            return
        self.email = email.strip().lower()
        code = client.sign_in_code
        if code is None:  # a server without the extension: only the token signs us in
            self._say(f"Sign-in link sent to {self.email}. Paste the token from the mail "
                      "here: /token TOKEN", "good")
            return
        self._say(f"Sign-in link sent to {self.email}. Open it on any device and enter the "
                  f"code {code} there, or paste the token: /token TOKEN", "good")
        self._wait_in_background()

    def _wait_in_background(self) -> None:
        # One wait at a time; it follows the latest /login by itself.
        if self._waiting is None or self._waiting.done():
            self._waiting = asyncio.create_task(self._wait_for_sign_in(self.client))

    async def _wait_for_sign_in(self, client: AsyncClient) -> None:
        told = False
        while True:
            try:
                await client.wait_for_sign_in()
                break
            except AuthenticationError as exc:
                if client is not self.client:
                    return
                if words.is_refusal(exc):  # confirmed, then the connection was refused
                    self._has_session = True
                    self._connect_in_background()
                else:
                    self._say(words.sign_in_ended(exc, self.email), "error")
                return
            except ClientError as exc:
                if client is not self.client:
                    return
                if client.sign_in_code is None:  # confirmed, but connecting failed
                    self._has_session = True
                    self._connect_in_background()
                    return
                if not told:
                    self._say(f"{words.unreachable(self.server_url, exc)} to check the "
                              "sign-in; still waiting.", "warning")
                    told = True
                await asyncio.sleep(SIGN_IN_RETRY)
        if client is self.client:
            self._now_signed_in()
            self._say(f"Signed in as {user_label(client.user)} (the link was confirmed "
                      "in a browser).", "good")
            await self._signed_in()

    async def redeem(self, token: str) -> None:
        """``/token``: sign in with the token. While a connection or an attempt is open, the
        token is redeemed on a second client first, which replaces the first only once it
        is signed in; a token that fails changes nothing."""
        old = self.client
        was_waiting = await self._stop_waiting()
        busy = old.connection_state is not ConnectionState.DISCONNECTED
        client = self._new_client(like=old) if busy else old
        before = self._cached_session()
        try:
            await client.connect(token)
        except ClientError as exc:
            if self._cached_session() in (before, None):  # the token was not taken
                if client is not old:
                    self._detach(client)
                self._say("Sign-in failed: "
                          f"{words.after_colon(words.connect_failed(self.server_url, exc))}",
                          "error")
                if was_waiting and old.sign_in_code is not None:
                    self._wait_in_background()
                return
            # The token was taken and its session kept, but the connection failed.
            if client is not old:
                await self._swap(client)
            self._now_signed_in()
            if not worth_retrying(exc):
                self._connect_failed(exc, "Sign-in failed: ")
                return
            self._say(f"Signed in, but {words.after_colon(self._away(exc))}; trying again "
                      "by itself.", "warning")
            self._connect_in_background()
            return
        if client is not old:
            await self._swap(client)
        self._now_signed_in()
        await self._signed_in()

    def _now_signed_in(self) -> None:
        self._has_session = True
        self.refused = None

    async def _stop_waiting(self) -> bool:
        """Stop waiting for the link; True when a wait was stopped with its sign-in still
        pending (it can be waited for again)."""
        task, self._waiting = self._waiting, None
        if task is None or task.done():
            return False
        if self.client.sign_in_code is None:  # confirmed already: let it finish signing in
            self._waiting = task
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    def _cached_session(self) -> str | None:
        try:
            return SessionCache(self.session_file).load(self.server_url)
        except AuthenticationError:
            return None

    # -- leaving ---------------------------------------------------------------------------

    async def logout(self) -> None:
        """``/logout``: stop waiting and trying, disconnect, and forget the session."""
        await self.close()
        self.client.clear_cached_session()
        self._has_session = False
        self.refused = None
        self._last_user = None

    async def close(self) -> None:
        """Stop waiting for a sign-in and trying to connect, and disconnect."""
        for task in (self._waiting, self._connecting):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._waiting = self._connecting = None
        await self.client.disconnect()

    # -- the clients -----------------------------------------------------------------------

    def _new_client(self, like: AsyncClient | None = None) -> AsyncClient:
        """A client that never stops reconnecting, with ``like``'s options if given."""
        client = AsyncClient(self.server_url, session_cache_file=self.session_file,
                             kind="terminal", max_reconnect_attempts=None,
                             reconnect_delay_max=self.reconnect_max_delay)
        if like is not None:
            for option in CLIENT_OPTIONS:
                setattr(client, option, getattr(like, option))
        own: dict[str, Callable[[AsyncClient, dict[str, Any]], None]] = {
            "authenticated": self._on_authenticated, "disconnect": self._on_disconnect,
            "error": self._on_error}
        attached: list[tuple[str, EventHandler]] = [
            *self._handlers.items(),
            *((event, functools.partial(handler, client)) for event, handler in own.items())]
        for event, handler in attached:
            client.on(event, handler)
        self._attached[client] = attached
        return client

    def _detach(self, client: AsyncClient) -> None:
        for event, handler in self._attached.pop(client, []):
            client.off(event, handler)

    async def _swap(self, client: AsyncClient) -> None:
        """Make ``client`` (signed in) the one in use; close the one it replaces."""
        old, self.client = self.client, client
        connecting, self._connecting = self._connecting, None
        self._detach(old)
        await old.disconnect()  # stops its attempts too
        if connecting is not None:
            await asyncio.gather(connecting, return_exceptions=True)

    # -- events of the client in use -------------------------------------------------------

    def _on_authenticated(self, client: AsyncClient, data: dict[str, Any]) -> None:
        if client is self.client:
            self._last_user = client.user
            self._now_signed_in()
        self._greeted(client, data)

    def _on_disconnect(self, client: AsyncClient, data: dict[str, Any]) -> None:
        if client is self.client and client.connection_state is ConnectionState.RECONNECTING:
            self._lost_at = self._lost_at or time.monotonic()
            self._say(f"Connection to {self.server_url} lost; reconnecting by itself "
                      "(/reconnect tries now).", "warning")

    def away(self) -> float | None:
        """Seconds the connection was away, once it is back after a drop; else None. Asked
        by the ``authenticated`` handler, it is forgotten once told."""
        lost, self._lost_at = self._lost_at, None
        return None if lost is None or not self.client.connected else time.monotonic() - lost

    def _on_error(self, client: AsyncClient, data: dict[str, Any]) -> None:
        if client is not self.client:
            return
        self._lost_at = None  # the attempts are over: no "again, after ..." later
        if data.get("code") == 401:
            self.refused = str(data.get("error") or "refused")
        self._say(words.error_event(self.server_url, data), "error")
