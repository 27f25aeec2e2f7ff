"""Time for bots: the real clock, a clock for pacing, and one tests can move without sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import time


class Clock:
    """Wall-clock seconds (for things stored across restarts) and sleeping until a moment."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep_until(self, when: float, wake: asyncio.Event) -> None:
        """Return at ``when``, or earlier when ``wake`` is set (the schedule changed)."""
        delay = when - self.time()
        if delay <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)


class MonotonicClock(Clock):
    """Seconds that never jump, for pacing (the flood limit): intervals, not dates.

    Its ``time()`` is *not* epoch time: it counts from an arbitrary start, so it must never
    be stored or compared with :class:`Clock` times.
    """

    def time(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        return time.monotonic()


class FakeClock(Clock):
    """A clock that only moves when told to: ``clock.advance(60)`` runs what falls due."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._moved = asyncio.Event()

    def time(self) -> float:
        """The fake current time."""
        return self.now

    async def sleep_until(self, when: float, wake: asyncio.Event) -> None:
        """Return once the fake time reaches ``when``, or when ``wake`` is set."""
        while self.now < when and not wake.is_set():
            self._moved.clear()
            waits = [asyncio.ensure_future(self._moved.wait()), asyncio.ensure_future(wake.wait())]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward; jobs due by then run as soon as the event loop gets to them."""
        self.now += seconds
        self._moved.set()
