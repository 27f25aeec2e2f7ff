"""The one place where the client reaches into python-socketio's and engine.io's private parts.

The client's counterpart of :mod:`roomz.server.internals`. ``tests/client/test_internals.py``
checks every assumption below against the installed versions, so an upgrade fails a test
instead of leaving clients stuck.

Private names used, why no public route exists, and the upstream issue where there is one:

python-socketio
  ``AsyncClient._handle_event`` (overridden in :class:`SocketClient`): the client hands any
      event the server emits to the handler of that name, the handlers of its own life
      cycle included. A server that emits ``disconnect`` while the connection is healthy
      makes the client believe it dropped (RECONNECTING for good); ``connect`` or
      ``__disconnect_final`` with an argument fail in a task ("Task exception was never
      retrieved"). Such events are dropped here before dispatch. Upstream keeps these
      names only from catch-all (``"*"``) handlers; no upstream issue found.
  ``BaseClient.reserved_events``: those names (``connect``, ``connect_error``,
      ``disconnect``, ``__disconnect_final``), an undocumented class attribute.
  ``"__disconnect_final"`` (an event name): the only signal that the client has stopped
      reconnecting, its attempts used up or aborted (python-socketio#1236, undocumented).
  ``AsyncClient.shutdown``: raises ``AttributeError`` when called just as a reconnect task
      starts (``_reconnect_task`` set, ``_reconnect_abort`` not made yet; the first
      reconnect only). :func:`shut` tries again one turn of the loop later. No upstream
      issue found.

python-engineio
  ``AsyncClient.state`` (``sio.eio.state``): python-socketio reconnects after a drop only
      when the Engine.IO state is still ``"connected"`` (the transport was lost, not closed
      by either side); :func:`will_reconnect` reads it the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

#: The event python-socketio triggers once it stops reconnecting.
DISCONNECT_FINAL = "__disconnect_final"


class SocketClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's client, deaf to servers that emit its own life-cycle events.

    An event the server emits under a reserved name is passed to ``on_reserved_event``
    (its name) instead of the handler of that name.
    """

    def __init__(self, *, on_reserved_event: Callable[[str], None], **options: Any) -> None:
        super().__init__(**options)
        self.on_reserved_event = on_reserved_event

    async def _handle_event(self, namespace: str | None, id: int | None, data: Any) -> None:
        name = data[0] if isinstance(data, list) and data else None
        if isinstance(name, str) and name in self.reserved_events:
            self.on_reserved_event(name)
            return
        await super()._handle_event(namespace, id, data)


def will_reconnect(sio: socketio.AsyncClient) -> bool:
    """True when python-socketio will try to reconnect after the drop being handled."""
    return bool(sio.reconnection and sio.eio.state == "connected")


def on_reconnecting_over(sio: socketio.AsyncClient, handler: Callable[[], Awaitable[None]]
                         ) -> None:
    """Call ``handler`` once ``sio`` has stopped reconnecting (attempts used up, or aborted)."""
    sio.on(DISCONNECT_FINAL, handler)


async def shut(sio: socketio.AsyncClient) -> None:
    """Disconnect ``sio`` and stop its reconnecting."""
    try:
        await sio.shutdown()
    except AttributeError:
        # Just as a reconnect task starts, shutdown() finds no abort event yet; one turn
        # of the loop later the task has made it.
        await asyncio.sleep(0)
        await sio.shutdown()
