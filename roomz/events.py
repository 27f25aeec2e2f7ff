"""Event handlers registered with ``client.on()``: sync or async, each isolated from the others."""

from __future__ import annotations

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
