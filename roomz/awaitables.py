"""``await_me_maybe``: the result of a callback that may be a plain function or a coroutine.

Handlers, plugin hooks, commands, jobs and mail callbacks may each be either; this one
helper (datasette's idea) waits for whichever it is, so no caller checks by itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """``value`` awaited if it is awaitable (a coroutine, a task, a future), else itself."""
    if inspect.isawaitable(value):
        return await value
    return value
