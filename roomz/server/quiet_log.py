"""Log lines that strangers can trigger, at most one per kind per interval.

Anyone on the network can send a bad request or a malformed packet, many times a
second. Each kind of complaint is logged once per interval, as one line with no
traceback, and the next line says how many were left out meanwhile.
"""

from __future__ import annotations

import logging
import time

INTERVAL_SECONDS = 10.0


class QuietLog:
    """One line per ``kind`` per ``interval`` seconds on ``logger``; the rest are counted."""

    def __init__(self, logger: logging.Logger, interval: float = INTERVAL_SECONDS) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` as a warning unless ``kind`` was logged in the last interval."""
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        self._last[kind] = now
        skipped = self._skipped.pop(kind, 0)
        if skipped:
            message += f" (and {skipped} more like it since the last such line)"
        self.logger.warning(message, *args)
