"""Waiting in tests: poll a condition until it holds, bounded, failing with what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0,
                     what: str | Callable[[], str] = "the condition") -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout`` s.

    ``what`` may be a function, so that what it shows (say, what arrived) is read at the
    timeout, not when the wait began.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {said}")
        await asyncio.sleep(0.01)


async def stays_true(condition: Callable[[], bool], seconds: float) -> bool:
    """True when ``condition()`` holds at every check for ``seconds`` (a short, bounded watch)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        await asyncio.sleep(0.02)
    return condition()
