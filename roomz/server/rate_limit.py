"""Sliding-window rate limit on magic-link requests, per email."""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol


class RateLimit(Protocol):
    """Counts magic-link requests: in this process (:class:`RateLimiter`) or in Redis."""

    async def hit(self, key: str) -> float | None: ...


class RateLimiter:
    """Allow at most ``limit`` hits per key within ``window_seconds``."""

    def __init__(self, limit: int, window_seconds: float = 3600.0) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._hits: dict[str, deque[float]] = {}

    async def hit(self, key: str) -> float | None:
        """Record a hit; None when allowed, else the seconds until the next one is."""
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_seconds - now
        hits.append(now)
        return None

    async def remove_expired(self) -> None:
        """Forget keys whose hits have all left the window."""
        cutoff = time.monotonic() - self.window_seconds
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
