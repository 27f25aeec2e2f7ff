"""After a node's message bus broke: its connections that may have missed messages resume.

Several nodes deliver each kept message as they hear Redis publish it. A node whose
subscription broke (Redis restarted, or dropped the connection) cannot hear what was
published meanwhile, and its connections, which stayed up, would never ask for it. So
when the node listens again, before it delivers anything new, it looks in the history of
each user with a connection here for a message after the last one it delivered to them.
Those connections are closed as a broken link closes them: their clients reconnect and
ask for what they missed from where each of them stands (docs/protocol.md 3.7). Users
who missed nothing keep their connections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from .channels import channel_of
from .internals import SocketServer

log = logging.getLogger("roomz.server")

#: A message published this long before the node noticed its bus was gone may not have
#: reached it (and Redis's clock, which names entries, may be this far ahead of ours).
SLACK_SECONDS = 5.0


class Member(Protocol):
    """A signed-in connection, as :class:`~roomz.server.chat.Connection` is."""

    email: str


class Kept(Protocol):
    """What this needs of the history (:class:`~roomz.server.redis_history.RedisHistory`)."""

    async def any_after(self, cursors: Mapping[str, str]) -> set[str]:
        """The users (of ``cursors``: email to cursor) with a message kept after theirs."""

    def cursor_at(self, when: float) -> str:
        """A cursor before every message kept at ``when`` (``time.time()``) or later."""


class BusGaps:
    """The :attr:`~roomz.server.redis_state.RedisFanOutManager.after_gap` of a node."""

    def __init__(self, sio: SocketServer, connections: Mapping[str, Member],
                 delivered: Mapping[str, str], history: Kept,
                 heard_up_to: Callable[[], str | None] = lambda: None) -> None:
        self.heard_up_to = heard_up_to
        self.sio = sio
        self.connections = connections  # sid to connection: the chat's own, kept current
        self.delivered = delivered  # room to the cursor last delivered there: the bus's
        self.history = history

    async def __call__(self, lost_at: float) -> None:
        """Make the connections that may have missed messages since ``lost_at`` resume
        (raises :class:`StoreUnavailable` if Redis fails meanwhile: the bus tries again)."""
        sids: dict[str, list[str]] = {}
        for sid, member in list(self.connections.items()):
            sids.setdefault(member.email, []).append(sid)
        if not sids:
            return
        # Redis's own clock where known: the last message heard, or the subscription's start
        # (a millisecond back: entries of other streams may share its millisecond).
        heard = self.heard_up_to()
        since = (f"{max(0, int(heard.split('-')[0]) - 1)}-0" if heard is not None
                 else self.history.cursor_at(lost_at - SLACK_SECONDS))
        missed = await self.history.any_after(
            {email: self.delivered.get(channel_of(email), since) for email in sids})
        dropped = [sid for email in missed for sid in sids[email]]
        if dropped:
            log.warning("the message bus was lost for %.1f s: %d connection(s) of %d user(s) "
                        "may have missed messages; they reconnect to catch up",
                        max(0.0, time.time() - lost_at), len(dropped), len(missed))
        for sid in dropped:
            self.sio.drop(sid)

