"""The outgoing flood limit: a token bucket with two lines, posts first, replies bounded.

A *post* (what a scheduled job, a startup hook or an event other than a message sends)
waits its turn and is never dropped. A *reply* (what the bot sends while handling a
message) waits in a line of at most ``max_waiting``; when that line is full the reply is
refused with :class:`ReplyDropped`, and so is every further reply until the line has
drained: one overflow, however long it lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque

from .clock import Clock


class MonotonicClock(Clock):
    """The real clock as seconds that never jump: pacing needs intervals, not dates."""

    def time(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        return time.monotonic()


class ReplyDropped(Exception):
    """A reply was refused: the line of replies is full, or still draining after it was.

    ``overflow`` is set on the first reply an overflow drops: it resolves to the number
    of replies dropped once the line has drained. It is None for the later ones.
    """

    def __init__(self, overflow: asyncio.Future[int] | None) -> None:
        super().__init__("too many replies are waiting to go out")
        self.overflow = overflow


class TokenBucket:
    """``burst`` messages at once, then ``per_second`` on average; at most ``max_waiting``
    replies wait for their turn.

    :meth:`take` (a post) and :meth:`take_reply` wait until a token is free; posts are
    served before waiting replies, each line in arrival order. ``clock`` paces the tokens
    (tests pass a :class:`~roomz_bots.clock.FakeClock` and move it).
    """

    def __init__(self, burst: int = 3, per_second: float = 1.0, max_waiting: int = 20, *,
                 clock: Clock | None = None) -> None:
        if burst < 1 or not 0 < per_second < math.inf or max_waiting < 1:
            raise ValueError(f"a flood limit needs burst >= 1, per_second > 0 and "
                             f"max_waiting >= 1, got burst={burst}, per_second={per_second}, "
                             f"max_waiting={max_waiting}")
        self.burst = burst
        self.per_second = per_second
        self.max_waiting = max_waiting
        self.clock = clock or MonotonicClock()
        #: Replies dropped by the current overflow, or by the last one.
        self.dropped = 0
        self._tokens = float(burst)
        self._stamp = self.clock.time()
        self._posts: deque[asyncio.Future[None]] = deque()
        self._replies: deque[asyncio.Future[None]] = deque()
        self._overflow: asyncio.Future[int] | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Posts and replies waiting for a token."""
        return len(self._posts) + len(self._replies)

    async def take(self) -> None:
        """Wait for, and use up, one token for a post; a post is never refused."""
        await self._wait(self._posts)

    async def take_reply(self) -> None:
        """Wait for, and use up, one token for a reply.

        Raises :class:`ReplyDropped` when ``max_waiting`` replies are already waiting, and
        for every reply after that until they have all gone out.
        """
        if self._overflow is None and len(self._replies) < self.max_waiting:
            await self._wait(self._replies)
            return
        first = self._overflow is None
        if first:
            self._overflow = asyncio.get_running_loop().create_future()
            self.dropped = 0
        self.dropped += 1
        raise ReplyDropped(self._overflow if first else None)

    def _refill(self) -> None:
        now = self.clock.time()
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self.burst, self._tokens + elapsed * self.per_second)
        self._stamp = now

    async def _wait(self, line: deque[asyncio.Future[None]]) -> None:
        self._refill()
        if self._tokens >= 1 and not self._posts and not self._replies:
            self._tokens -= 1  # nobody waits: no need to queue
            return
        turn = asyncio.get_running_loop().create_future()
        line.append(turn)
        if self._pacer is None:
            self._pacer = asyncio.ensure_future(self._pace())
        try:
            await turn
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                line.remove(turn)
            self._settle()
            self._wake.set()  # the pacer may have nobody left to wait for
            raise

    async def _pace(self) -> None:
        """Hand out tokens as they come, posts first, until nobody waits."""
        try:
            while True:
                self._refill()
                self._serve()
                if not self._posts and not self._replies:
                    return
                self._wake.clear()
                next_token = self._stamp + (1 - self._tokens) / self.per_second
                await self.clock.sleep_until(next_token, self._wake)
        finally:
            self._pacer = None

    def _serve(self) -> None:
        while self._tokens >= 1 and (self._posts or self._replies):
            turn = (self._posts or self._replies).popleft()
            if not turn.done():
                turn.set_result(None)
                self._tokens -= 1
        self._settle()

    def _settle(self) -> None:
        """End the overflow once every reply it kept waiting has gone out."""
        if self._overflow is not None and not self._replies:
            if not self._overflow.done():
                self._overflow.set_result(self.dropped)
            self._overflow = None
