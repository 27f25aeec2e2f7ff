"""How fast one connection may send: a token bucket, refilled at a steady rate."""

from __future__ import annotations

import time
from collections.abc import Callable


class MessageRate:
    """Allow ``burst`` messages at once, then ``per_second`` on average.

    >>> rate = MessageRate(per_second=100, burst=500)
    >>> rate.take()  # False once the connection sends faster than that
    True
    """

    __slots__ = ("per_second", "burst", "_clock", "_tokens", "_last")  # one per connection

    def __init__(self, per_second: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Spend one message's token; False (nothing spent) when there is none left."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
