"""How many connections each user has, for ``user_joined``, ``user_left`` and the per-user
cap, and which they are, for ``who``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .who import ClientInfo, Listed


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

    async def join(self, email: str, connection_id: str, user: dict[str, Any],
                   client: ClientInfo) -> int: ...
    async def leave(self, email: str, connection_id: str) -> int: ...
    async def rename(self, connection_id: str, user: dict[str, Any]) -> None: ...
    async def connections(self, email: str, here: Iterable[Listed]) -> Iterable[Listed]: ...
    def closing(self) -> None: ...


class Presence:
    """Connection counts per user in this process. Redis keeps them for several nodes."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def join(self, email: str, connection_id: str, user: dict[str, Any],
                   client: ClientInfo) -> int:
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

    async def connections(self, email: str, here: Iterable[Listed]) -> Iterable[Listed]:
        """The connections of ``email``: on one node, among ``here`` (this node's)."""
        return [connection for connection in here if connection.email == email]

    def closing(self) -> None:
        """Nothing to do: this process's counts end with it."""
