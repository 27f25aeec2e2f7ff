"""Each user's recent messages for several nodes: one Redis stream per user.

Only imported with ``--redis-url``. A message is kept with ``XADD ... MAXLEN ~ N`` and the
stream's expiry renewed, in one round trip, before any node shows it; its cursor is its
stream entry id. Redis trims the stream to about the window's count (never below it), an
idle user's stream expires after the window's age, and reads skip what is older. The
history is as durable as Redis is: with ``appendonly yes`` a Redis restart loses nothing
acknowledged.

Given the message bus, the script that keeps a message also publishes it to the user's
channel, with its entry id as its cursor. Redis runs one script at a time, so keeping is
publishing: no node can die between the two, and every node, the keeping one included,
hears each user's messages in the order of their stream (a reader that saw a message has
seen every message kept before it, and may resume after it).

A message sent with a key (send once) is kept by one script that first looks for the key
(``sent-key:["EMAIL","KEY"]``, expiring with the window's age) and, finding none, adds
the message and sets the key: of two sends of one key racing from two nodes, the second
finds the first's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from . import wire_json
from .channels import channel_of
from .history import KeptOnce, Replay, Window
from .redis_state import PREFIX, RedisFanOutManager, entry_order, guard, once, run_key
from .unavailable import StoreUnavailable

START = "0-0"  # the cursor of a client that joined before the user's first message


#: Publishes the kept message (ARGV 4-6: the bus's channel, then the message in two pieces
#: that go around its entry id), when there is a bus (a channel).
PUBLISH = """
local heard = 0
if ARGV[4] ~= '' then heard = redis.call('PUBLISH', ARGV[4], ARGV[5] .. id .. ARGV[6]) end
"""

#: KEYS: the stream, the run's key (:func:`~.redis_state.once`: a command redis-py sends
#: again must not keep and publish the message twice); ARGV: the count, the message, the
#: age, and what PUBLISH takes. ``{1, entry id, nodes that heard it}``.
KEEP = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
""" + PUBLISH + "return {1, id, heard}"

#: KEYS: the stream, the key's key; ARGV: as KEEP's, then the message's id and time.
#: As KEEP when kept; ``{0, what the first send of the key was answered, 0}`` when not.
KEEP_ONCE = """
local first = redis.call('GET', KEYS[2])
if first then return {0, first, 0} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], cjson.encode({id = ARGV[7], timestamp = ARGV[8], cursor = id}),
           'EX', ARGV[3])
""" + PUBLISH + "return {1, id, heard}"


class RedisHistory:
    """The :class:`~roomz.server.history.HistoryStore` of several nodes, in Redis streams.

    With a ``bus``, keeping a message publishes it (:attr:`publishes`); before keeping, the
    history waits for the other nodes to listen if Redis was away, so that the wait comes
    before the message has its place; and when Redis fails, it tells the bus, which then
    waits before its own next publish (a message is kept before anything else of it is
    sent, so during an outage it is this store that fails first).
    """

    def __init__(self, redis: aioredis.Redis, window: Window,
                 bus: RedisFanOutManager | None = None) -> None:
        self.redis = redis
        self.window = window
        self.bus = bus
        #: True when keeping a message also delivers it, on every node.
        self.publishes = bus is not None
        self._keep = redis.register_script(once(KEEP))
        self._keep_once = redis.register_script(KEEP_ONCE)

    @staticmethod
    def _key(email: str) -> str:
        return f"{PREFIX}history:{email}"

    async def open(self) -> None:
        """Nothing to do: the client connects when first used."""

    async def keep(self, email: str, message: dict[str, Any]) -> str:
        """Add ``message`` to the user's stream (and publish it); its entry id once Redis
        has it."""
        _, entry_id = await self._run(self._keep, [self._key(email), run_key()], email, message)
        await self._delivered_here(email, str(entry_id))
        return str(entry_id)

    async def keep_once(self, email: str, key: str, message: dict[str, Any]) -> KeptOnce:
        """Add ``message`` to the user's stream (and publish it) unless ``key`` was used
        within the window's age: one script, run whole."""
        kept, reply = await self._run(
            self._keep_once,
            [self._key(email), f"{PREFIX}sent-key:{wire_json.dumps([email, key])}"],
            email, message, message["id"], message["timestamp"])
        if kept:
            await self._delivered_here(email, str(reply))
            return KeptOnce(str(reply))
        first = wire_json.loads(reply)
        if first["id"] == message["id"]:  # redis-py ran the script again after a lost reply
            await self._delivered_here(email, str(first["cursor"]))
            return KeptOnce(str(first["cursor"]))
        return KeptOnce(str(first["cursor"]), first)

    async def _delivered_here(self, email: str, cursor: str) -> None:
        """Return once this node delivered the message it kept, which comes back by the
        bus, to its own connections: the sender's among them hear it before their
        acknowledgement, as the protocol says."""
        if self.bus is not None:
            await self.bus.delivered_here(channel_of(email), cursor)

    async def _run(self, script: Any, keys: list[str], email: str, message: dict[str, Any],
                   *more: str) -> tuple[int, Any]:
        """Run a keeping script; ``(1, entry id)`` when it kept the message, else
        ``(0, its reply)``."""
        publication = ("", "", "")
        if self.bus is not None:
            await self.bus.listening()  # a wait after the keep would let others overtake
            publication = (self.bus.channel,
                           *self.bus.kept_message(channel_of(email), message))
        args = [self.window.messages, wire_json.dumps(message),
                math.ceil(self.window.seconds), *publication, *more]
        try:
            kept, reply, heard = await guard(script(keys=keys, args=args))
        except StoreUnavailable:
            if self.bus is not None:
                self.bus.unreachable()
            raise
        if kept and self.bus is not None:
            self.bus.heard(heard)
        return kept, reply

    async def after(self, email: str, cursor: str | None) -> Replay:
        """The messages after ``cursor``, at most the window's count."""
        key = self._key(email)
        if cursor is None:
            newest = await guard(self.redis.xrevrange(key, count=1))
            return Replay(head=str(newest[0][0]) if newest else START)
        known = cursor == START or self.order(cursor) is not None and self._young(cursor)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrange(key, cursor if known else "-", cursor if known else "-", count=1)
            pipe.xrevrange(key, "+", f"({cursor}" if known else "-",
                           count=self.window.messages + 1)
            found, entries = await guard(pipe.execute())
        known = known and (bool(found) or cursor == START)
        entries = [entry for entry in entries if self._young(str(entry[0]))]
        complete = known and len(entries) <= self.window.messages
        messages = _messages(entries[:self.window.messages])
        head = messages[-1]["cursor"] if messages else (cursor if known else None)
        return Replay(messages, complete, head)

    async def any_after(self, cursors: Mapping[str, str]) -> set[str]:
        """The users (of ``cursors``: email to cursor) with a message kept after theirs:
        one round trip."""
        emails = list(cursors)
        async with self.redis.pipeline(transaction=False) as pipe:
            for email in emails:
                pipe.xrevrange(self._key(email), "+", f"({cursors[email]}", count=1)
            found = await guard(pipe.execute())
        return {email for email, entries in zip(emails, found, strict=True) if entries}

    async def latest(self, email: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` messages in the window, oldest first."""
        entries = await guard(self.redis.xrevrange(self._key(email),
                                                    count=min(count, self.window.messages)))
        return _messages([entry for entry in entries or [] if self._young(str(entry[0]))])

    def order(self, cursor: str) -> tuple[int, ...] | None:
        """``(milliseconds, sequence)`` of an entry id, else None."""
        return entry_order(cursor)

    def _young(self, entry_id: str) -> bool:
        """True when the entry was added within the window's age (Redis's clock)."""
        order = self.order(entry_id)
        return order is not None and order[0] >= self.window.oldest(time.time()) * 1000

    async def close(self) -> None:
        """Nothing to do: the client is shared with the other stores."""


def _messages(newest_first: list[Any]) -> list[dict[str, Any]]:
    return [{**wire_json.loads(fields["m"]), "cursor": str(entry_id)}
            for entry_id, fields in reversed(newest_first)]
