"""What a connection received, in order, and waiting for what is still to come.

:class:`Events` is the one "record events, wait for one" helper of the tests. Give it a
``roomz`` client (``AsyncClient`` or ``SyncClient``) and it registers a handler per event
name; or call :meth:`Events.record` yourself, as the bare Socket.IO client of the server
tests does. Each entry keeps its name, its data, when it arrived and the thread it arrived
in, since ``SyncClient`` handlers run in a thread of their own. Waits are bounded and fail
with what did arrive.

Silence is proved by a later event, not by sleeping: to show that ``x`` never came, wait for
something that must come after it (the echo of a following message, a bot's answer to a
following command) and then assert that ``x`` is not among what arrived before.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

TIMEOUT = 5.0
#: Every event a ``roomz`` client's handlers can receive.
CLIENT_EVENTS = ("authenticated", "message", "user_joined", "user_left",
                 "display_name_changed", "disconnect", "error")


def user_of(email: str, display_name: str | None = None) -> dict[str, Any]:
    """The ``user`` object events carry for a connection of ``email``."""
    return {"id": f"user:{email}", "email": email, "display_name": display_name}


def anything(data: Any) -> bool:
    """Matches every event (the default of :meth:`Events.wait_for`)."""
    return True


class Entry(NamedTuple):
    """One recorded event."""

    name: str
    data: Any
    at: float  # time.monotonic() when it arrived
    thread: str  # the name of the thread its handler ran in


class Events:
    """Every event received, in order; ``client`` given, a handler is registered for each
    of ``names`` on it. Safe to record from any thread and to wait from any other."""

    def __init__(self, client: Any = None, names: tuple[str, ...] = CLIENT_EVENTS) -> None:
        self.entries: list[Entry] = []
        self._cond = threading.Condition()
        self._wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        if client is not None:
            for name in names:
                client.on(name, self.recorder(name))

    def recorder(self, name: str) -> Callable[[Any], None]:
        """A handler that records each call as a ``name`` event."""
        def record(data: Any) -> None:
            self.record(name, data)
        return record

    def record(self, name: str, data: Any) -> None:
        """Add an event (synchronously: the recorded order is the order of arrival)."""
        with self._cond:
            self.entries.append(Entry(name, data, time.monotonic(),
                                      threading.current_thread().name))
            self._cond.notify_all()
            wakers = list(self._wakers)
        for loop, wake in wakers:
            loop.call_soon_threadsafe(wake.set)

    @property
    def events(self) -> list[tuple[str, Any]]:
        """``(name, data)`` of every event, in order."""
        with self._cond:
            return [(e.name, e.data) for e in self.entries]

    @property
    def threads(self) -> list[str]:
        """The thread each event's handler ran in, in order."""
        with self._cond:
            return [e.thread for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def named(self, name: str, start: int = 0) -> list[Any]:
        """The data of every ``name`` event from ``start`` on."""
        with self._cond:
            return [e.data for e in self.entries[start:] if e.name == name]

    def count(self, name: str) -> int:
        """How many ``name`` events arrived."""
        return len(self.named(name))

    def find(self, name: str, match: Callable[[Any], bool] = anything,
             start: int = 0) -> Entry | None:
        """The first ``name`` event from ``start`` on whose data ``match``es, if any."""
        with self._cond:
            return next((e for e in self.entries[start:] if e.name == name and match(e.data)),
                        None)

    def _failure(self, name: str, timeout: float, what: str | None) -> AssertionError:
        return AssertionError(f"timed out after {timeout:g} s waiting for "
                              f"{what or f'a {name!r} event'}; got {self.events!r}")

    async def wait_for(self, name: str, match: Callable[[Any], bool] = anything, *,
                       timeout: float = TIMEOUT, start: int = 0, what: str | None = None) -> Any:
        """The data of the first ``name`` event from ``start`` on that ``match``es, waiting
        up to ``timeout`` s for it (AssertionError naming ``what`` and showing what came)."""
        return (await self.wait_for_entry(name, match, timeout=timeout, start=start,
                                          what=what)).data

    async def wait_for_entry(self, name: str, match: Callable[[Any], bool] = anything, *,
                             timeout: float = TIMEOUT, start: int = 0,
                             what: str | None = None) -> Entry:
        """Like :meth:`wait_for`, the whole :class:`Entry` (with its arrival time)."""
        waker = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._wakers.add(waker)
        deadline = time.monotonic() + timeout
        try:
            while True:
                waker[1].clear()  # before looking: what is recorded after it wakes us
                found = self.find(name, match, start)
                if found is not None:
                    return found
                try:
                    await asyncio.wait_for(waker[1].wait(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    raise self._failure(name, timeout, what) from None
        finally:
            with self._cond:
                self._wakers.discard(waker)

    def wait_for_sync(self, name: str, match: Callable[[Any], bool] = anything, *,
                      timeout: float = TIMEOUT, start: int = 0, what: str | None = None) -> Any:
        """Like :meth:`wait_for`, blocking the calling thread (for ``SyncClient`` tests)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.find(name, match, start) is not None,
                                       timeout):
                raise self._failure(name, timeout, what)
        found = self.find(name, match, start)
        assert found is not None
        return found.data
