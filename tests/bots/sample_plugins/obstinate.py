"""A command that ignores every cancel for a while (a plugin's bug), then ends: a test
that makes stopping give up sooner sees it give up on it."""

from __future__ import annotations

import asyncio
import time

from roomz_bots import command

from . import JOURNAL

NAME = "obstinate"
IGNORED_FOR = 4.0  # longer than the test lets stopping try; bounded, so its loop can close


@command
async def hang() -> str:
    """Ignore cancels for a while."""
    JOURNAL.record(NAME, "hang started")
    first_cancel: float | None = None
    while first_cancel is None or time.monotonic() - first_cancel < IGNORED_FOR:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            first_cancel = first_cancel or time.monotonic()
    return "gave up"
