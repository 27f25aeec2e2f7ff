"""After a node's message bus broke: its connections that may have missed messages resume.

Several nodes deliver each kept message as they hear Redis publish it. A node whose
subscription broke (Redis restarted, or dropped the connection) cannot hear what was
published meanwhile, and its connections, which stayed up, would never ask for it. So
when the node listens again, before it delivers anything new, it looks in the history of
each user with a connection here for a message after the last one it delivered to them
(or, for a user it delivered nothing to, after the moment it last heard everything).
Those connections are closed as a broken link closes them: their clients reconnect and
ask for what they missed from where each of them stands (docs/protocol.md 3.7). Users
who missed nothing keep their connections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .channels import channel_of
from .internals import SocketServer

if TYPE_CHECKING:  # Redis's, imported only with --redis-url
    from .chat import Connection
    from .redis_history import RedisHistory
    from .redis_state import RedisFanOutManager

log = logging.getLogger("roomz.server")


class BusGaps:
    """The :attr:`~roomz.server.redis_state.RedisFanOutManager.after_gap` of a node."""

    def __init__(self, sio: SocketServer, connections: Mapping[str, Connection],
                 bus: RedisFanOutManager, history: RedisHistory) -> None:
        self.sio = sio
        self.connections = connections  # sid to connection: the chat's own, kept current
        self.bus = bus
        self.history = history

    async def __call__(self, lost_at: float) -> None:
        """Make the connections that may have missed messages since the bus was lost (at
        ``lost_at``) resume; raises :class:`StoreUnavailable` if Redis fails meanwhile
        (the bus tries again)."""
        sids: dict[str, list[str]] = {}
        for sid, member in list(self.connections.items()):
            sids.setdefault(member.email, []).append(sid)
        heard = self.bus.heard_up_to  # set at every subscription: a gap follows one
        if not sids or heard is None:
            return
        # A millisecond back: entries of other streams may share its millisecond.
        since = f"{max(0, int(heard.split('-')[0]) - 1)}-0"
        missed = await self.history.any_after(
            {email: self.bus.delivered.get(channel_of(email), since) for email in sids})
        dropped = [sid for email in missed for sid in sids[email]]
        if dropped:
            log.warning("the message bus was lost for %.1f s: %d connection(s) of %d user(s) "
                        "may have missed messages; they reconnect to catch up",
                        max(0.0, time.time() - lost_at), len(dropped), len(missed))
        for sid in dropped:
            self.sio.drop(sid)
