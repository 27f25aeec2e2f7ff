"""How many connections each user has, for ``user_joined`` and ``user_left``."""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class PresenceStore(Protocol):
    """Connection counts per user: this process's (:class:`Presence`) or all nodes' (Redis)."""

    async def join(self, email: str) -> int: ...
    async def leave(self, email: str) -> int: ...


class Presence:
    """Connection counts per user in this process. Redis keeps them for several nodes."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def join(self, email: str) -> int:
        """Count a new connection of ``email``; returns how many it has now."""
        self.counts[email] += 1
        return self.counts[email]

    async def leave(self, email: str) -> int:
        """Count a closed connection of ``email``; returns how many remain."""
        self.counts[email] -= 1
        remaining = self.counts[email]
        if remaining <= 0:
            del self.counts[email]
        return max(remaining, 0)
