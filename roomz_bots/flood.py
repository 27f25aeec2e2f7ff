"""The outgoing flood limit: a token bucket; what goes over it waits its turn, none is dropped."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``burst`` messages at once, then ``per_second`` on average.

    :meth:`take` waits until a token is free; callers are served in arrival order.
    """

    def __init__(self, burst: int = 3, per_second: float = 1.0) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError(f"a flood limit needs burst >= 1 and per_second > 0, "
                             f"got burst={burst}, per_second={per_second}")
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now

    async def take(self) -> None:
        """Wait for, and use up, one token."""
        async with self._lock:  # FIFO: asyncio.Lock wakes waiters in order
            self._refill()
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.per_second)
                self._refill()
            self._tokens -= 1
