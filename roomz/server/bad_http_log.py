"""aiohttp's complaints about malformed HTTP, as quiet one-line warnings.

For every request it cannot parse (a request line over 8 KB, a malformed header, a
broken chunked body) aiohttp answers 400 and logs "Error handling request" with a
traceback on its ``aiohttp.server`` logger. Anyone can send such requests by the
thousand, so :class:`QuietBadRequests` turns those records into one :class:`QuietLog`
line per interval. Other errors, such as a bug in a handler, keep their traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http import HttpProcessingError
from aiohttp.log import server_logger

from .quiet_log import QuietLog

log = logging.getLogger("roomz.server")

MAX_SHOWN = 120  # characters of aiohttp's message: it may quote what the stranger sent


class QuietBadRequests(logging.Filter):
    """A filter for aiohttp's server logger; :meth:`install` it while a server runs."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet = QuietLog(log)

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass every record but a malformed request's, which becomes a quiet line."""
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        self.quiet.warning("bad-http", "bad HTTP request from %s: %s", peer,
                           ascii(error.message)[:MAX_SHOWN])
        return False

    def install(self) -> None:
        """Start filtering ``aiohttp.server``'s records."""
        server_logger.addFilter(self)

    def uninstall(self) -> None:
        """Stop filtering."""
        server_logger.removeFilter(self)
