"""Sliding-window rate limits on magic-link requests: several windows, counted together.

One request counts against several quotas at once (this email from this address, this
email from anywhere, this address for any email). It is recorded in all of them or in
none: a refused request uses up no quota, so a stranger who is refused cannot spend the
budget of the windows that did not refuse.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class Quota:
    """At most ``limit`` hits per window for ``key``; ``what`` says which limit it is."""

    key: str
    limit: int
    what: str


@dataclass(frozen=True)
class Refusal:
    """The quota that refused a hit, and the seconds until it allows one again."""

    quota: Quota
    retry_after: float


class RateLimit(Protocol):
    """Counts magic-link requests: in this process (:class:`RateLimiter`) or in Redis."""

    async def hit(self, quotas: Sequence[Quota]) -> Refusal | None: ...


class RateLimiter:
    """Sliding windows of ``window_seconds`` kept in this process."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS) -> None:
        self.window_seconds = window_seconds
        self._hits: dict[str, deque[float]] = {}

    async def hit(self, quotas: Sequence[Quota]) -> Refusal | None:
        """Record one hit in every quota when all allow it and return None; otherwise record
        nothing and return the refusal that lasts longest."""
        now = time.monotonic()
        windows = [self._window(quota.key, now) for quota in quotas]
        refusals = [Refusal(quota, hits[0] + self.window_seconds - now)
                    for quota, hits in zip(quotas, windows, strict=True)
                    if len(hits) >= quota.limit]
        if refusals:
            return max(refusals, key=lambda refusal: refusal.retry_after)
        for hits in windows:
            hits.append(now)
        return None

    def _window(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_seconds:
            hits.popleft()
        return hits

    async def remove_expired(self) -> None:
        """Forget keys whose hits have all left the window."""
        cutoff = time.monotonic() - self.window_seconds
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
