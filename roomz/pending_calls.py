"""``PendingCalls``: the calls waiting for their acknowledgement, ended at once when the
connection they were sent on closes.

python-socketio's ``call()`` waits out its whole timeout when the connection drops during
the wait (documented in its docstring; upstream issue miguelgrinberg/python-socketio#813,
closed as "documentation"): the acknowledgement can no longer come, since the Socket.IO
protocol keeps none across connections, yet the caller waits. Here a call is the public
``emit(..., callback=...)`` and a future of our own, which :meth:`PendingCalls.lost`
ends when the socket's ``disconnect`` handler runs. No private part of python-socketio
is used.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import socketio


class CallLost(Exception):
    """The connection a call was sent on closed before its acknowledgement came; the
    message says how it closed ("the connection was lost")."""


class _Lost:
    """What a call's future holds when its connection closed first: a result, not an
    exception, so that one nobody awaits any more (the caller was cancelled meanwhile)
    is not logged as "never retrieved"."""

    def __init__(self, how: str) -> None:
        self.how = how


class PendingCalls:
    """The calls waiting for their acknowledgement, by the socket they were sent on.

    ::

        calls = PendingCalls()
        ack = await calls.call(sio, "message", {"content": "hi"}, timeout=10)
        # in sio's "disconnect" handler:
        calls.lost(sio, "the connection was lost")
    """

    def __init__(self) -> None:
        self._waiting: dict[socketio.AsyncClient, set[asyncio.Future[Any]]] = {}
        # Closed sockets, remembered while they live: a call on one ends at once.
        self._closed: weakref.WeakKeyDictionary[socketio.AsyncClient, str] = (
            weakref.WeakKeyDictionary())

    async def call(self, sio: socketio.AsyncClient, event: str, data: Any,
                   timeout: float) -> Any:
        """Emit ``event`` with ``data`` on ``sio`` and return its acknowledgement, as
        ``sio.call()`` does (one argument: itself; several: a tuple; none: None).

        Raises ``asyncio.TimeoutError`` when none came within ``timeout`` seconds, and
        :class:`CallLost` as soon as ``sio`` closes before it came.
        """
        if sio in self._closed:
            raise CallLost(self._closed[sio])
        acknowledged: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*args: Any) -> None:
            if not acknowledged.done():
                acknowledged.set_result(args[0] if len(args) == 1 else args or None)

        waiting = self._waiting.setdefault(sio, set())
        waiting.add(acknowledged)
        try:
            await sio.emit(event, data, callback=on_ack)
            ack = await asyncio.wait_for(acknowledged, timeout)
        finally:
            waiting.discard(acknowledged)
            if not waiting and self._waiting.get(sio) is waiting:
                del self._waiting[sio]
        if isinstance(ack, _Lost):
            raise CallLost(ack.how)
        return ack

    def lost(self, sio: socketio.AsyncClient, how: str) -> None:
        """``sio`` closed (``how``: "the connection was lost"): every call waiting on it,
        and any made on it later, raises :class:`CallLost` with ``how``."""
        self._closed[sio] = how
        for acknowledged in self._waiting.pop(sio, ()):
            if not acknowledged.done():
                acknowledged.set_result(_Lost(how))
