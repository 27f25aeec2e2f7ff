"""The outgoing flood limit: a token bucket with two lines, one for posts and one for replies.

A *post* (what a scheduled job, a startup hook or an event other than a message sends)
waits its turn and is never dropped. A *reply* (what the bot sends while handling a
message) waits in a line of at most ``max_waiting``. When that line is full, an
*overflow* begins: new replies are dropped (:class:`ReplyDropped`) until the line is down
to half of ``max_waiting``. The later parts of a reply whose first part was taken are
never dropped, so no answer is cut part-way.

Posts go first, but at most :data:`POSTS_IN_A_ROW` of them while a reply waits: a plugin
that posts as fast as the limit allows cannot starve the replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

from .clock import Clock, MonotonicClock

POSTS_IN_A_ROW = 2


class ReplyDropped(Exception):
    """A reply was dropped: the line of replies is full, or an overflow is under way.

    ``first`` is True for the first reply an overflow drops, False for the later ones.
    """

    def __init__(self, first: bool) -> None:
        super().__init__("too many replies are waiting to go out")
        self.first = first


class TokenBucket:
    """``burst`` messages at once, then ``per_second`` on average; at most ``max_waiting``
    replies wait for their turn (see the module docstring).

    ``clock`` paces the tokens (tests pass a :class:`~roomz_bots.clock.FakeClock` and move
    it); it defaults to a :class:`~roomz_bots.clock.MonotonicClock`.
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
        #: An overflow ends once no more replies than this are waiting.
        self.low_water = max_waiting // 2
        self.clock = clock or MonotonicClock()
        #: Replies dropped by the current overflow, or by the last one.
        self.dropped = 0
        self._tokens = float(burst)
        self._stamp = self.clock.time()
        self._posts: deque[asyncio.Future[None]] = deque()
        self._replies: deque[asyncio.Future[None]] = deque()
        self._posts_ahead = 0  # posts served in a row while a reply waited
        self._calm = asyncio.Event()
        self._calm.set()
        self._pacer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Posts and replies waiting for a token."""
        return len(self._posts) + len(self._replies)

    @property
    def overflowing(self) -> bool:
        """True while new replies are dropped."""
        return not self._calm.is_set()

    async def take(self) -> None:
        """Wait for, and use up, one token for a post; a post is never dropped."""
        await self._wait(self._posts)

    async def take_reply(self, *, continuing: bool = False) -> None:
        """Wait for, and use up, one token for a reply.

        Raises :class:`ReplyDropped` at once when ``max_waiting`` replies are waiting or an
        overflow is under way, unless ``continuing``: a later part of a reply whose first
        part was taken.
        """
        if not continuing and (self.overflowing or len(self._replies) >= self.max_waiting):
            first = not self.overflowing
            if first:
                self._calm.clear()
                self.dropped = 0
            self.dropped += 1
            raise ReplyDropped(first)
        await self._wait(self._replies)

    async def calm(self) -> int:
        """Wait until no overflow is under way; returns how many replies the last one dropped."""
        await self._calm.wait()
        return self.dropped

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
        """Hand out tokens as they come, until nobody waits."""
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
            if self._posts and (not self._replies or self._posts_ahead < POSTS_IN_A_ROW):
                turn = self._posts.popleft()
                self._posts_ahead = self._posts_ahead + 1 if self._replies else 0
            else:
                turn = self._replies.popleft()
                self._posts_ahead = 0
            if not turn.done():
                turn.set_result(None)
                self._tokens -= 1
        self._settle()

    def _settle(self) -> None:
        """End the overflow once the line of replies is down to ``low_water``."""
        if self.overflowing and len(self._replies) <= self.low_water:
            self._calm.set()
