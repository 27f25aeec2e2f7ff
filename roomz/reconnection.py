"""Trying again: the client's one loop of attempts on a :class:`~roomz.backoff.Backoff`.

python-socketio's own reconnection is off in the client (it cannot say which attempt it
is on, be told to try now, or tell a refused session from a server that is away); this
loop replaces it, for reconnecting after a drop and for ``connect(retry=True)`` alike.

- :class:`Retrying` runs attempts until one succeeds, waiting longer between them, and
  says which attempt it is on and when the next one comes; its wait can be cut short.
- :func:`worth_retrying` says which failures another attempt may cure: the server could
  not be reached or was full, but not a session it refused.
- :class:`Reconnector` runs one series at a time in a task that can be stopped at once;
  :func:`stopped_trying` words the ``error`` event when a series ends without success.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .backoff import Backoff
from .exceptions import AuthenticationError, ClientError, ConnectionError

log = logging.getLogger("roomz.client")

#: Refusals (their reason, lower-cased) that say the server is busy, not that the session
#: is bad: our server's "Server full", "too many connections for ...", "Server busy".
CAPACITY_REFUSALS = ("server full", "too many connections", "server busy")


def is_capacity_refusal(reason: str | None) -> bool:
    """True when a refusal's ``reason`` says the server is at capacity, not the session bad."""
    return reason is not None and any(word in reason.lower() for word in CAPACITY_REFUSALS)


def worth_retrying(exc: BaseException) -> bool:
    """True when another attempt may succeed where this one failed with ``exc``.

    Yes: the server could not be reached, did not answer in time, or refused for capacity.
    No: the server refused the session or the token (signing in again is the cure), or
    sent a malformed greeting (status 502: a server that is broken, not away).
    """
    if isinstance(exc, AuthenticationError):
        return is_capacity_refusal(exc.detail)
    return isinstance(exc, ConnectionError) and exc.status != 502


def stopped_trying(exc: Exception, server_url: str) -> dict[str, Any]:
    """The ``error`` event for reconnection attempts that ended with ``exc``."""
    if isinstance(exc, OutOfAttempts):
        return {"error": f"could not reconnect to {server_url} after {exc.attempts} attempts",
                "code": 503}
    if isinstance(exc, AuthenticationError):
        reason = (exc.detail or str(exc)).removesuffix("; sign in again")
        return {"error": f"the server refused the session: {reason}; sign in again",
                "code": 401}
    if isinstance(exc, ConnectionError):  # a malformed greeting: a broken server
        return {"error": f"{exc}; disconnected", "code": exc.status or 502}
    log.error("reconnecting to %s failed", server_url, exc_info=exc)  # a bug: say so, never hang
    return {"error": f"could not reconnect to {server_url}: {exc!r}", "code": 503}


class OutOfAttempts(ClientError):
    """Every attempt allowed failed; ``last`` is what the last one raised."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"{attempts} attempts failed; the last: {last}")
        self.attempts = attempts
        self.last = last


class Retrying:
    """One series of attempts, waiting ``backoff``'s delays between them.

    ``max_attempts`` bounds the attempts (None: no bound). :attr:`attempt` and
    :attr:`next_in` may be read from any thread.
    """

    def __init__(self, backoff: Backoff, max_attempts: int | None) -> None:
        self.backoff = backoff
        self.max_attempts = max_attempts
        self._attempt = 0
        self._due: float | None = None  # time.monotonic() of the next attempt, while waiting
        self._wake = asyncio.Event()
        self._stopped = False

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress or coming next (1 for the first retry)."""
        return self._attempt

    @property
    def next_in(self) -> float | None:
        """Seconds until the next attempt, or None when none is waiting."""
        due = self._due
        return None if due is None else max(0.0, due - time.monotonic())

    def now(self) -> None:
        """Cut the wait in progress short; nothing when no attempt is waiting."""
        if self._due is not None:
            self._wake.set()

    def stop(self) -> None:
        """End the series at its next step: :meth:`run` raises ``CancelledError`` there.

        Cancelling the task that runs it is not enough before Python 3.12: ``wait_for``
        loses a cancellation that comes as the attempt it waits for ends.
        """
        self._stopped = True
        self._wake.set()

    async def run(self, attempt: Callable[[], Awaitable[None]], *, at_once: bool = False) -> None:
        """Call ``attempt`` until it returns, waiting before each call.

        With ``at_once`` the first call comes without a wait and is not counted (it is
        not a retry). Raises what an attempt raised when it is not :func:`worth_retrying`,
        and :class:`OutOfAttempts` once ``max_attempts`` retries have failed.
        """
        last: BaseException | None = None
        if at_once:
            try:
                return await self._try(attempt)
            except Exception as exc:
                if not worth_retrying(exc):
                    raise
                last = exc
        while self.max_attempts is None or self._attempt < self.max_attempts:
            self._attempt += 1
            await self._wait(self.backoff.next_delay())
            try:
                await self._try(attempt)
            except Exception as exc:
                if not worth_retrying(exc):
                    raise
                last = exc
            else:
                self.backoff.reset()
                return
        raise OutOfAttempts(self._attempt, last or ConnectionError("no attempt was allowed"))

    async def _try(self, attempt: Callable[[], Awaitable[None]]) -> None:
        """``attempt()``, unless :meth:`stop` came first; if it came, ``CancelledError``."""
        try:
            if not self._stopped:
                await attempt()
        finally:
            if self._stopped:
                raise asyncio.CancelledError()

    async def _wait(self, delay: float) -> None:
        self._wake.clear()
        self._due = time.monotonic() + delay
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except asyncio.TimeoutError:
            pass
        finally:
            self._due = None


class Stopped(Exception):
    """:meth:`Reconnector.stop` ended the attempts."""


class Reconnector:
    """Runs a client's series of attempts, one series at a time, in a task it can stop.

    ``attempt(token)`` makes one attempt with a magic-link token or None, and raises when
    it fails; ``new_retrying()`` gives a :class:`Retrying` with the client's options as
    they are now. :attr:`attempt`, :attr:`next_in` and :meth:`now` are those of the series
    under way, 0, None and nothing when there is none.
    """

    def __init__(self, attempt: Callable[[str | None], Awaitable[None]],
                 new_retrying: Callable[[], Retrying]) -> None:
        self._attempt = attempt
        self._new_retrying = new_retrying
        self._retrying: Retrying | None = None
        self._task: asyncio.Task[None] | None = None
        self._after_drop = False  # the series under way was started by start(), not connect()

    @property
    def attempt(self) -> int:
        """The attempt in progress or coming next of the series under way, else 0."""
        retrying = self._retrying
        if retrying is None:
            return 0
        # After a drop every call is a retry: attempt 1 is coming even before the task runs.
        return max(retrying.attempt, 1) if self._after_drop else retrying.attempt

    @property
    def next_in(self) -> float | None:
        """Seconds until the next attempt, or None when none is waiting."""
        retrying = self._retrying
        return retrying.next_in if retrying is not None else None

    def now(self) -> None:
        """Cut the wait for the next attempt short; nothing when none is waiting."""
        if self._retrying is not None:
            self._retrying.now()

    @property
    def running(self) -> bool:
        """True while a series of attempts is under way."""
        return self._task is not None and not self._task.done()

    def start(self, gave_up: Callable[[Exception], Awaitable[None]]) -> None:
        """After a drop: try in the background until an attempt succeeds, unless a series is
        under way already. If the attempts end without success, ``gave_up(why)`` is awaited."""
        if self.running:
            return  # dropped again as an attempt succeeded: that series carries on
        retrying = self._retrying = self._new_retrying()
        self._after_drop = True
        self._task = asyncio.create_task(self._reconnect(retrying, gave_up))

    async def _reconnect(self, retrying: Retrying,
                         gave_up: Callable[[Exception], Awaitable[None]]) -> None:
        try:
            await retrying.run(lambda: self._attempt(None))
            return
        except Exception as exc:
            why = exc
        finally:
            self._forget(asyncio.current_task())
        await gave_up(why)

    async def connect(self, magic_token: str | None, *, retry: bool = True) -> None:
        """``connect(retry=True)``: try now, then on the backoff until an attempt succeeds;
        without ``retry``, the one try of ``connect()``, which :meth:`stop` ends as well.

        Raises what ended the attempts (see :meth:`Retrying.run`; without ``retry``, a try
        worth retrying ends in :class:`OutOfAttempts`), or :class:`Stopped`.
        """
        tokens = [magic_token]  # redeemed by the first attempt that gets that far

        async def attempt() -> None:
            await self._attempt(tokens[0])
            tokens[0] = None

        # Without retry: the first try alone (no retry, so its backoff is never waited).
        retrying = self._new_retrying() if retry else Retrying(Backoff(1.0, 1.0), 0)
        self._retrying = retrying
        self._after_drop = False
        task = self._task = asyncio.create_task(retrying.run(attempt, at_once=True))
        try:
            await task
        except asyncio.CancelledError:
            if self._task is not task:  # not our caller cancelled: stop() did
                raise Stopped() from None
            raise
        finally:
            self._forget(task)

    async def stop(self) -> None:
        """End the series under way at once, wherever it is; it leaves no task behind."""
        task, retrying = self._task, self._retrying
        self._forget(task)
        if retrying is not None:
            retrying.stop()
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait({task})

    def _forget(self, task: asyncio.Task[Any] | None) -> None:
        if self._task is task:
            self._task = self._retrying = None
