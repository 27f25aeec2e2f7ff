"""The one place where the client reaches into python-socketio's private parts.

The client's counterpart of :mod:`roomz.server.internals`. ``tests/client/test_internals.py``
checks every assumption below against the installed versions, so an upgrade fails a test
instead of leaving clients stuck.

Private names used, why no public route exists, and the upstream issue where there is one:

python-socketio
  ``AsyncClient._handle_event`` (overridden in :class:`SocketClient`): the client hands any
      event the server emits to the handler of that name, the handlers of its own life
      cycle included. A server that emits ``disconnect`` while the connection is healthy
      makes the client believe it dropped (RECONNECTING for good); ``connect`` with an
      argument fails in a task ("Task exception was never retrieved"). Such events are
      dropped here before dispatch. Upstream keeps these names only from catch-all
      (``"*"``) handlers; no upstream issue found.
  ``BaseClient.reserved_events``: those names (``connect``, ``connect_error``,
      ``disconnect``, ``__disconnect_final``), an undocumented class attribute.
  ``AsyncClient.failed_namespaces``: the namespaces the server refused (it answered
      CONNECT_ERROR), an undocumented attribute. ``connect`` raises the same
      ``ConnectionError`` whether the server was unreachable or refused the session,
      and the documented ``connect_error`` handler is called in both cases; only this
      list tells them apart (no upstream issue found). Read by :meth:`SocketClient.refused`.

The client's reconnection needs no private part: python-socketio's own is turned off
(``reconnection=False``) and :mod:`roomz.reconnection` runs the attempts. Nor does ending
the calls that wait for an acknowledgement when their connection closes (``call()`` waits
out its timeout, upstream #813): :mod:`roomz.pending_calls` uses the public ``emit`` with
a callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import socketio


class SocketClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's client, deaf to servers that emit its own life-cycle events.

    An event the server emits under a reserved name is passed to ``on_reserved_event``
    (its name) instead of the handler of that name. :meth:`refused` says whether a
    failed ``connect`` reached a server that refused it.
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

    def refused(self) -> bool:
        """True when the server answered the last ``connect`` with a refusal (CONNECT_ERROR),
        rather than not being reached."""
        return bool(self.failed_namespaces)
