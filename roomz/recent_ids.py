"""``RecentIds``: the last few thousand message ids, to recognise one that comes again.

A message can arrive twice (redelivered around a reconnect, or to both clients while the
terminal swaps them); remembering every id would grow for as long as a program runs, so
only the most recent ``size`` are kept, each with what is known about it (``None`` when
seeing it is all that matters).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class RecentIds(Generic[V]):
    """At most ``size`` ids, each with a value; remembering one more forgets the id that
    was remembered longest ago.

    ::

        seen: RecentIds[None] = RecentIds(1024)
        if message_id not in seen:
            seen.remember(message_id)
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self._values: OrderedDict[str, V | None] = OrderedDict()

    def remember(self, message_id: str, value: V | None = None) -> None:
        """Keep ``message_id`` (with ``value``) as the most recent; forget the oldest beyond
        ``size``."""
        self._values[message_id] = value
        self._values.move_to_end(message_id)
        if len(self._values) > self.size:
            self._values.popitem(last=False)

    def get(self, message_id: str) -> V | None:
        """The value remembered with ``message_id``; None when it is not (or no longer) known."""
        return self._values.get(message_id)

    def pop(self, message_id: str) -> V | None:
        """Forget ``message_id``; the value remembered with it (None when not known)."""
        return self._values.pop(message_id, None)

    def ids(self) -> list[str]:
        """The ids remembered, the oldest first."""
        return list(self._values)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._values

    def __len__(self) -> int:
        return len(self._values)
