"""Event handlers registered with ``client.on()``: sync or async, each isolated from the others."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .awaitables import await_me_maybe

log = logging.getLogger("roomz.client")

#: A handler receives the event's data dict; it may be a plain function or a coroutine function.
EventHandler = Callable[[dict[str, Any]], "Awaitable[Any] | Any"]

EVENTS = ("authenticated", "message", "user_joined", "user_left", "display_name_changed",
          "disconnect", "error")


class EventHandlers:
    """Handlers per event name; lists are replaced, never mutated, so any thread may register."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[EventHandler]] = {}

    def on(self, event: str, handler: EventHandler) -> None:
        """Register ``handler`` for ``event``; registering the same handler twice has no effect."""
        _check_event(event)
        if not callable(handler):
            raise TypeError(f"handler for {event!r} must be callable, got {type(handler).__name__}")
        current = self._handlers.get(event, [])
        if handler not in current:
            self._handlers[event] = [*current, handler]

    def off(self, event: str, handler: EventHandler | None = None) -> None:
        """Remove ``handler`` from ``event``, or every handler of ``event`` when it is None."""
        _check_event(event)
        if handler is None:
            self._handlers.pop(event, None)
        else:
            self._handlers[event] = [h for h in self._handlers.get(event, []) if h != handler]

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        """Call every handler of ``event`` in order; one that raises is logged and skipped."""
        for handler in self._handlers.get(event, ()):
            try:
                await await_me_maybe(handler(data))
            except Exception:
                log.exception("handler %s for %r raised", getattr(handler, "__qualname__", handler),
                              event)


def _check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of: {', '.join(EVENTS)}")


class Turns:
    """Events reach handlers one at a time, in the order they arrived.

    python-socketio handles each event in a task of its own, so an event whose handling
    awaits (an async handler, a display name re-applied before ``authenticated``) would be
    overtaken by the events after it. Each event takes its :class:`Turn` as it arrives,
    before any await, and waits for it only to call the handlers: the rest of its work (an
    answer handed to ``ask()``) goes on at once, since a handler may be waiting for it.
    """

    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    def take(self) -> Turn:
        """The next place in line; call it before the first await of the event's task."""
        previous = self._last if self._last is not None and not self._last.done() else None
        self._last = asyncio.get_running_loop().create_future()
        return Turn(previous, self._last)


class Turn:
    """One event's place in line: :meth:`come` waits for the events before it; leaving
    its ``with`` block lets the next go, however the event's work ended."""

    def __init__(self, previous: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        self._previous = previous
        self._mine = mine

    async def come(self) -> None:
        """Wait until the handlers of every earlier event are done."""
        if self._previous is not None:
            # shield: cancelling this wait must not end the earlier event's turn
            await asyncio.shield(self._previous)
            self._previous = None

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._mine.done():  # this event's handlers are done: the next may call its own
            self._mine.set_result(None)
