"""``SyncClient``: the same client for code without asyncio, on one background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import fields
from typing import Any, NoReturn, TypeVar

from .async_client import AsyncClient
from .events import EventHandler
from .exceptions import ConnectionError
from .message import Message
from .options import ClientOptions
from .questions import Answer, Choice, Question
from .state import ConnectionState

T = TypeVar("T")


class SyncClient(ClientOptions):
    """Synchronous wrapper around :class:`AsyncClient` with a background thread.

    One event loop runs in one daemon thread named ``roomz-client``; every method
    may be called from any thread and blocks until the work is done there.
    Handlers registered with :meth:`on` run in that background thread, so a handler
    that blocks holds up the connection; they must not call this client's blocking
    methods (that would wait on their own thread). :meth:`close`, or leaving the
    ``with`` block, disconnects and stops the thread. The parameters, ``session_cache_file``
    included, are those of :class:`AsyncClient` (:class:`~roomz.options.ClientOptions`).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._client = AsyncClient(**{f.name: getattr(self, f.name) for f in fields(ClientOptions)})
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="roomz-client",
                                        daemon=True)
        self._thread.start()
        self._closed = False
        self._calls: set[asyncio.Task[Any]] = set()  # the calls under way, of any thread

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncClient is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            self._refuse_handler()
        future = asyncio.run_coroutine_threadsafe(self._tracked(coro), self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._closed:  # close() in another thread ended the call
                raise ConnectionError("the client was closed while this call waited") from None
            raise
        except BaseException:
            future.cancel()  # interrupted (Ctrl-C): stop the work too, e.g. a connect that retries
            raise

    def _refuse_handler(self) -> NoReturn:
        """A handler runs in the client's thread: waiting there for it would never end."""
        raise RuntimeError("a SyncClient handler cannot call the client's blocking methods; "
                           "use AsyncClient for bots that reply from handlers")

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``, known to :meth:`close` while it runs."""
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        try:
            return await coro
        finally:
            self._calls.discard(task)

    async def _end_calls(self) -> None:
        """End the calls still under way (another thread's ``ask()``, say), cleanly."""
        calls = list(self._calls)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)

    @property
    def connected(self) -> bool:
        """True if the WebSocket is connected and authenticated."""
        return self._client.connected

    @property
    def user(self) -> dict[str, Any] | None:
        """``{"id", "email", "display_name"}`` of the signed-in user, or None."""
        return self._client.user

    @property
    def connection_state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._client.connection_state

    @property
    def reconnect_attempt(self) -> int:
        """The attempt in progress or coming next while reconnecting, else 0; see
        :attr:`AsyncClient.reconnect_attempt`."""
        return self._client.reconnect_attempt

    @property
    def next_reconnect_in(self) -> float | None:
        """Seconds until the next attempt, or None; see :attr:`AsyncClient.next_reconnect_in`."""
        return self._client.next_reconnect_in

    def reconnect_now(self) -> None:
        """Cut the wait for the next attempt short; see :meth:`AsyncClient.reconnect_now`."""
        if not self._closed:
            self._loop.call_soon_threadsafe(self._client.reconnect_now)

    def on(self, event: str, handler: EventHandler) -> None:
        """Register ``handler`` for ``event``; it runs in the client's background thread."""
        self._client.on(event, handler)

    def off(self, event: str, handler: EventHandler | None = None) -> None:
        """Unregister ``handler``, or every handler of ``event`` when it is None."""
        self._client.off(event, handler)

    def login(self, email: str) -> bool:
        """Request a magic link for ``email``; see :meth:`AsyncClient.login`."""
        return self._run(self._client.login(email))

    @property
    def sign_in_code(self) -> str | None:
        """The code to show while the last login's link waits; see
        :attr:`AsyncClient.sign_in_code`."""
        return self._client.sign_in_code

    def wait_for_sign_in(self) -> None:
        """Block until the last login's link is confirmed in a browser, then connect; see
        :meth:`AsyncClient.wait_for_sign_in`."""
        self._run(self._client.wait_for_sign_in())

    def connect(self, session_token: str | None = None, *, token: str | None = None,
                retry: bool = False) -> None:
        """Sign in and connect; see :meth:`AsyncClient.connect`. With ``retry`` it blocks
        until the server answers; :meth:`close` from another thread stops it."""
        self._run(self._client.connect(session_token, token=token, retry=retry))

    def disconnect(self) -> None:
        """Close the connection; see :meth:`AsyncClient.disconnect`."""
        self._run(self._client.disconnect())

    def send(self, content: str, *, content_type: str | None = None,
             subject: str | None = None, language: str | None = None,
             key: str | None = None) -> dict[str, Any]:
        """Send a chat message and return the acknowledgement; see :meth:`AsyncClient.send`."""
        return self._run(self._client.send(content, content_type=content_type,
                                           subject=subject, language=language, key=key))

    def ask(self, question: str, answers: Sequence[str | Choice], *, timeout: float = 300.0,
            default: str | Sequence[str] | None = None, multi_select: bool = False,
            timeout_message: str | None = None, subject: str | None = None) -> Answer:
        """Ask a question and block until its answer (or timeout); see
        :meth:`AsyncClient.ask`."""
        return self._run(self._client.ask(question, answers, timeout=timeout, default=default,
                                          multi_select=multi_select,
                                          timeout_message=timeout_message, subject=subject))

    def poll(self, question: str, answers: Sequence[str | Choice], *, timeout: float = 60.0,
             multi_select: bool = False, subject: str | None = None) -> list[Answer]:
        """Ask and collect every answer until the timeout; see :meth:`AsyncClient.poll`."""
        return self._run(self._client.poll(question, answers, timeout=timeout,
                                           multi_select=multi_select, subject=subject))

    def answer(self, question: Question | Message | Mapping[str, Any] | str,
               chosen: str | Sequence[str], *, free_text: str | None = None) -> dict[str, Any]:
        """Answer a question; see :meth:`AsyncClient.answer`."""
        return self._run(self._client.answer(question, chosen, free_text=free_text))

    def who(self) -> list[dict[str, Any]]:
        """The user's connections; see :meth:`AsyncClient.who`."""
        return self._run(self._client.who())

    def supports(self, feature: str) -> bool:
        """True when the server names ``feature``; see :meth:`AsyncClient.supports`."""
        return self._client.supports(feature)

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` messages, oldest first; see :meth:`AsyncClient.history`."""
        return self._run(self._client.history(limit))

    @property
    def cursor(self) -> str | None:
        """Where this client stands in its user's history; see :attr:`AsyncClient.cursor`."""
        return self._client.cursor

    @cursor.setter
    def cursor(self, value: str | None) -> None:
        self._client.cursor = value

    def set_display_name(self, name: str | None) -> dict[str, Any]:
        """Set or clear the display name; see :meth:`AsyncClient.set_display_name`."""
        return self._run(self._client.set_display_name(name))

    def clear_cached_session(self) -> None:
        """Forget the session; see :meth:`AsyncClient.clear_cached_session`."""
        self._client.clear_cached_session()

    def close(self) -> None:
        """Disconnect and stop the background thread; the client cannot be used afterwards.
        A call another thread is waiting in (``ask()``, say) ends at once: with
        :class:`ConnectionError`, or as a closed connection ends a call waiting for its
        acknowledgement (408)."""
        if self._closed:
            return
        if threading.current_thread() is self._thread:
            self._refuse_handler()  # before anything is stopped: the client goes on working
        try:
            self.disconnect()
        finally:
            self._closed = True
            with contextlib.suppress(Exception):  # bounded: a stuck call does not hold close up
                asyncio.run_coroutine_threadsafe(self._end_calls(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> SyncClient:
        try:
            self.connect()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
