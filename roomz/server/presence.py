"""How many connections each user has, for ``user_joined``, ``user_left`` and the per-user cap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Departure:
    """A connection that ended without closing (its node died): whose, and how many remain."""

    email: str
    user: dict[str, Any]  # the ``user`` object its events carried, display name included
    remaining: int  # the user's connections on all nodes once this one is gone


#: Told about the connections of a node that died, to send ``user_left`` for them.
DepartureHandler = Callable[[Sequence[Departure]], Awaitable[None]]


class PresenceStore(Protocol):
    """Connections per user: this process's (:class:`Presence`) or all nodes' (Redis)."""

    async def join(self, email: str, connection_id: str, user: dict[str, Any]) -> int: ...
    async def leave(self, email: str, connection_id: str) -> int: ...
    async def rename(self, connection_id: str, user: dict[str, Any]) -> None: ...


class Presence:
    """Connection counts per user in this process. Redis keeps them for several nodes."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def join(self, email: str, connection_id: str, user: dict[str, Any]) -> int:
        """Count a new connection of ``email``; returns how many it has now."""
        self.counts[email] += 1
        return self.counts[email]

    async def leave(self, email: str, connection_id: str) -> int:
        """Count a closed connection of ``email``; returns how many remain."""
        self.counts[email] -= 1
        remaining = self.counts[email]
        if remaining <= 0:
            del self.counts[email]
        return max(remaining, 0)

    async def rename(self, connection_id: str, user: dict[str, Any]) -> None:
        """Nothing to do: only several nodes need to know whose connections a node had."""
