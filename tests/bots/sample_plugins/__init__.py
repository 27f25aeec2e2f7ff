"""Plugins written for the tests, each a small model of something a plugin author does.

They write what happened into :data:`JOURNAL`, which the tests read and clear.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    """One call of a hook or command: which plugin, what, with which arguments, when."""

    plugin: str
    what: str
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class Journal:
    """Everything the sample plugins were called with, in order."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def record(self, plugin: str, what: str, **args: Any) -> None:
        """Note that ``plugin`` ran ``what`` with ``args``."""
        self.entries.append(Entry(plugin, what, args))

    def of(self, plugin: str, what: str | None = None) -> list[Entry]:
        """The entries of ``plugin`` (for ``what`` only, when given)."""
        return [e for e in self.entries if e.plugin == plugin and what in (None, e.what)]

    def clear(self) -> None:
        """Forget everything (between tests)."""
        self.entries.clear()


JOURNAL = Journal()
