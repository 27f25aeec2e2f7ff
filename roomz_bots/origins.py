"""Which hosted bot sent a message: the loop safety of bots that share a user's channel.

Every connection of a user sees every message of that user, bots included. On servers
with the ``connection_id`` extension a message names its connection; on the published
server it does not, and arrives before the sender's acknowledgement, so a bot records
what it is about to send and the first copy that comes back is recognised as its own.

The bots that share a channel share one :class:`Origins`, handed to each: the bot host
makes one for all its bots, and the terminal uses its host's.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from roomz.message import Message
from roomz.recent_ids import RecentIds

B = TypeVar("B")
KEY_LENGTH = 150  # escaping can grow text 6x before the published server cuts it at 1000
REMEMBERED = 4096


class Origins(Generic[B]):
    """Tells which bot (if any) of this process sent a message."""

    def __init__(self) -> None:
        self._connections: dict[str, B] = {}
        self._pending: dict[tuple[str, str], deque[B]] = {}
        self._messages: RecentIds[B] = RecentIds(REMEMBERED)

    def connected(self, connection_id: str | None, bot: B) -> None:
        """``bot`` now speaks through ``connection_id`` (from its ``authenticated`` event)."""
        self.disconnected(bot)  # a reconnect's new id replaces the old one
        if connection_id:
            self._connections[connection_id] = bot

    def disconnected(self, bot: B) -> None:
        """Forget ``bot``'s connections."""
        for cid in [c for c, b in self._connections.items() if b is bot]:
            del self._connections[cid]

    def sending(self, bot: B, email: str, text: str) -> tuple[str, str]:
        """Record that ``bot`` is about to send ``text``; returns the key to pass to ``sent``."""
        key = (email, text.strip()[:KEY_LENGTH])
        self._pending.setdefault(key, deque()).append(bot)
        return key

    def sent(self, bot: B, key: tuple[str, str], message_id: str | None) -> None:
        """The send is over: its copy either came back already or never will.

        A copy takes the first bot waiting with its text, which is not always its sender:
        two bots send the same line, and the second one's copy comes back first. Then the
        sender's place stays for the bot that copy was taken for, whose copy is still to come.
        """
        waiting = self._pending.get(key)
        taken_for = self._messages.get(message_id) if message_id else None
        if waiting and bot in waiting:
            if taken_for is None:  # its copy never came back (or named its connection)
                waiting.remove(bot)
            elif taken_for is not bot:  # its copy took another's place: that one still waits
                waiting[waiting.index(bot)] = taken_for
        if waiting is not None and not waiting:
            del self._pending[key]
        if message_id:
            self._messages.remember(message_id, bot)

    def origin(self, message: Message) -> B | None:
        """The hosted bot that sent ``message``, or None for anyone else."""
        connection_id = message.raw.get("connection_id")  # not the property: this is hot
        if connection_id:  # the server names the sender: nothing to remember
            return self._connections.get(connection_id)
        message_id = message.id
        if message_id in self._messages:
            return self._messages.get(message_id)
        waiting = self._pending.get((message.email, message.text.strip()[:KEY_LENGTH]))
        bot = waiting.popleft() if waiting else None
        self._messages.remember(message_id, bot)
        return bot

