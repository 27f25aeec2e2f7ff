"""``Backoff``: the waits between reconnection attempts, doubling up to a cap, with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable

#: How far each wait may stray from its nominal length, either way: 0.25 is ±25%.
JITTER = 0.25


class Backoff:
    """Waits of ``first``, 2 × ``first``, 4 × ``first`` ... up to ``cap`` seconds.

    Each wait is jittered by ±25%, so that clients dropped together do not all come back
    at the same instant, and is never longer than ``cap``. :meth:`reset` starts over.
    """

    def __init__(self, first: float, cap: float, *,
                 uniform: Callable[[float, float], float] = random.uniform) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"a backoff needs 0 < first <= cap, got first={first!r}, "
                             f"cap={cap!r}")
        self.first = first
        self.cap = cap
        self._uniform = uniform
        self._nominal = first

    def next_delay(self) -> float:
        """The next wait, in seconds; each call doubles the one after it, up to the cap."""
        nominal = self._nominal
        self._nominal = min(nominal * 2, self.cap)
        return min(nominal * self._uniform(1 - JITTER, 1 + JITTER), self.cap)

    def reset(self) -> None:
        """Start again from ``first`` (after an attempt that succeeded)."""
        self._nominal = self.first
