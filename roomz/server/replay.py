"""The history extension of the protocol: resuming after a cursor, and the last N messages.

A connecting client may say where it stands in its CONNECT auth payload,
``{"history": {"after": CURSOR}}`` (``CURSOR`` null: "from now on"). Its ``authenticated``
then says how many messages it missed and whether that is all of them, ``replay`` events
bring those, and only then come live events; every ``message`` carries its ``cursor``.
Any connection may ask ``history`` ``{"limit": N}`` for the last N messages.
docs/protocol.md (section 3.7) is the description for client authors.

Replay before live, exactly once: the connection is put behind a :class:`CatchUp` gate
(see :meth:`~roomz.server.internals.FanOutManager.gate`) *before* it enters its user's
room and the store is read. Every message is kept before it is emitted, so a message
emitted before the gate was there is in what the store returns, and one emitted after it
is held by the gate. The replay goes out first, then what the gate held, minus what the
replay already carried; for a while after, the gate still drops late copies of replayed
messages (another node may publish a message it kept before the read after the replay).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .history import HistoryStore, KeptOnce, Replay
from .internals import FanOutManager

log = logging.getLogger("roomz.server")

#: Messages per ``replay`` event: a bounded packet, and few packets for the outgoing queue.
REPLAY_CHUNK = 100
#: How long after a replay late copies of replayed messages are still dropped.
LATE_COPIES_SECONDS = 10.0
MAX_CURSOR_LENGTH = 100


@dataclass
class Resume:
    """What a connecting client asked for: the messages after ``cursor`` (None: none)."""

    cursor: str | None


def resume_request(auth: Any) -> Resume | None | str:
    """The resume a CONNECT's auth payload asks for, None when it asks for none, or what
    is wrong with it (a refusal naming the field)."""
    if not isinstance(auth, dict) or "history" not in auth:
        return None
    asked = auth["history"]
    if not isinstance(asked, dict):
        return "'history' in the auth payload must be an object such as {\"after\": null}"
    cursor = asked.get("after")
    if cursor is not None and not (isinstance(cursor, str) and 0 < len(cursor)
                                   <= MAX_CURSOR_LENGTH):
        return (f"'history.after' must be null or a cursor from a message's 'cursor' "
                f"(a string of 1-{MAX_CURSOR_LENGTH} characters)")
    return Resume(cursor)


@dataclass(eq=False)
class CatchUp:
    """The gate of a connection catching up: holds what is emitted to it until the replay
    is out, then drops late copies of replayed messages."""

    order: Callable[[str], tuple[int, ...] | None]
    holding: bool = True
    held: deque[tuple[str, Any]] = field(default_factory=deque)
    head: tuple[int, ...] | None = None  # the replay reached this far

    def passes(self, event: str, data: Any) -> bool:
        """Hold everything while catching up; afterwards, drop what the replay carried."""
        if self.holding:
            self.held.append((event, data))
            return False
        return not self.replayed(event, data)

    def replayed(self, event: str, data: Any) -> bool:
        """True for a message the replay carried (or one before it)."""
        if event != "message" or self.head is None or not isinstance(data, dict):
            return False
        cursor = data.get("cursor")
        order = self.order(cursor) if isinstance(cursor, str) else None
        return order is not None and order <= self.head


class Replays:
    """The history extension on one server: its store, its fan-out, its answers."""

    def __init__(self, store: HistoryStore, manager: FanOutManager) -> None:
        self.store = store
        self.manager = manager

    @property
    def announcement(self) -> dict[str, Any]:
        """What ``authenticated`` says about the history (its presence: the extension)."""
        window = self.store.window
        return {"messages": window.messages, "seconds": window.seconds}

    async def keep(self, email: str, message: dict[str, Any]) -> None:
        """Keep ``message`` before it is emitted, and give it its ``cursor``."""
        message["cursor"] = await self.store.keep(email, message)

    async def keep_once(self, email: str, key: str, message: dict[str, Any]) -> KeptOnce:
        """Keep ``message`` as :meth:`keep` does, unless a message of ``email``'s with
        ``key`` was kept within the window (then nothing is kept, and ``message`` gains no
        ``cursor``)."""
        kept = await self.store.keep_once(email, key, message)
        if kept.first is None:
            message["cursor"] = kept.cursor
        return kept

    async def admit(self, sid: str, room: str, email: str, resume: Resume,
                    greeting: dict[str, Any]) -> None:
        """Greet ``sid`` (``authenticated``, saying what it missed), replay what it missed
        since ``resume``, and put it in ``room``: each message exactly once, in order.

        Raises :class:`StoreUnavailable` (the connection then stays out of the room).
        """
        gate = CatchUp(self.store.order)
        self.manager.gate(sid, gate)
        try:
            await self.manager.enter_room(sid, "/", room)
            replay = await self.store.after(email, resume.cursor)
        except BaseException:
            self.manager.ungate(sid)
            raise
        gate.head = self.store.order(replay.head) if replay.head is not None else None
        greeting["history"] = {**self.announcement, "missed": len(replay.messages),
                               "complete": replay.complete, "cursor": replay.head}
        await self.manager.send_to(sid, "authenticated", greeting)
        for chunk in chunks(replay):
            await self.manager.send_to(sid, "replay", chunk)
        while gate.held:  # what came meanwhile, in order, minus what the replay carried
            event, data = gate.held.popleft()
            if not gate.replayed(event, data):
                await self.manager.send_to(sid, event, data)
        gate.holding = False  # no await since the last look at held: nothing slips past
        asyncio.get_running_loop().call_later(LATE_COPIES_SECONDS, self.manager.ungate, sid)

    async def holds(self, email: str, message_id: str) -> bool:
        """True when ``email``'s history holds the message ``message_id`` (within the
        window); raises :class:`StoreUnavailable`."""
        kept = await self.store.latest(email, self.store.window.messages)
        return any(message.get("id") == message_id for message in kept)

    async def latest(self, email: str, data: dict[str, Any]) -> dict[str, Any]:
        """The acknowledgement of a ``history`` request ``{"limit": N}``."""
        limit = data.get("limit", REPLAY_CHUNK)
        most = self.store.window.messages
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
            return {"error": f"Invalid 'limit': must be a whole number from 1 to {most}",
                    "code": 400}
        messages = await self.store.latest(email, limit)
        return {"status": "ok", "messages": [_replayed(m) for m in messages]}


def chunks(replay: Replay) -> list[dict[str, Any]]:
    """The ``replay`` events of one replay, none when nothing was missed."""
    messages = [_replayed(m) for m in replay.messages]
    return [{"messages": messages[i:i + REPLAY_CHUNK]}
            for i in range(0, len(messages), REPLAY_CHUNK)]


def _replayed(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "replayed": True}
