"""Each user's recent messages for several nodes: one Redis stream per user.

Only imported with ``--redis-url``. A message is kept with ``XADD ... MAXLEN ~ N`` and the
stream's expiry renewed, in one round trip, before any node shows it; its cursor is its
stream entry id. Redis trims the stream to about the window's count (never below it), an
idle user's stream expires after the window's age, and reads skip what is older. The
history is as durable as Redis is: with ``appendonly yes`` a Redis restart loses nothing
acknowledged.

A message sent with a key (send once) is kept by one script that first looks for the key
(``sent-key:["EMAIL","KEY"]``, expiring with the window's age) and, finding none, adds
the message and sets the key: Redis runs one script at a time, so of two sends of one
key racing from two nodes, the second finds the first's.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from . import wire_json
from .history import KeptOnce, Replay, Window
from .redis_state import PREFIX, guard
from .unavailable import StoreUnavailable

ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
START = "0-0"  # the cursor of a client that joined before the user's first message


#: KEYS: the stream, the key's key; ARGV: the count, the message, the age, its id and time.
#: ``{1, entry id}`` when kept; ``{0, what the first send of the key was answered}``.
KEEP_ONCE = """
local first = redis.call('GET', KEYS[2])
if first then return {0, first} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], cjson.encode({id = ARGV[4], timestamp = ARGV[5], cursor = id}),
           'EX', ARGV[3])
return {1, id}
"""


class RedisHistory:
    """The :class:`~roomz.server.history.HistoryStore` of several nodes, in Redis streams.

    ``on_unreachable`` is called when a message cannot be kept: the message bus then
    waits for the other nodes to listen again before its next publish, as it does after
    a publish of its own failed (a message is kept before it is published, so during an
    outage it is this store that fails first). ``listening`` is awaited before a message
    is kept: that wait, if any, comes before the message has its place in the history.
    """

    def __init__(self, redis: aioredis.Redis, window: Window,
                 on_unreachable: Callable[[], None] = lambda: None,
                 listening: Callable[[], Awaitable[None]] | None = None) -> None:
        self.redis = redis
        self.window = window
        self.on_unreachable = on_unreachable
        self.listening = listening
        self._keep_once = redis.register_script(KEEP_ONCE)

    @staticmethod
    def _key(email: str) -> str:
        return f"{PREFIX}history:{email}"

    async def open(self) -> None:
        """Nothing to do: the client connects when first used."""

    async def keep(self, email: str, message: dict[str, Any]) -> str:
        """Add ``message`` to the user's stream; its entry id once Redis has it."""
        if self.listening is not None:  # a wait after the XADD would let others overtake
            await self.listening()
        key = self._key(email)
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.xadd(key, {"m": wire_json.dumps(message)}, maxlen=self.window.messages,
                      approximate=True)
            pipe.expire(key, math.ceil(self.window.seconds))
            try:
                entry_id, _ = await guard(pipe.execute())
            except StoreUnavailable:
                self.on_unreachable()
                raise
        return str(entry_id)

    async def keep_once(self, email: str, key: str, message: dict[str, Any]) -> KeptOnce:
        """Add ``message`` to the user's stream unless ``key`` was used within the window's
        age: one script, run whole."""
        if self.listening is not None:
            await self.listening()
        try:
            kept, reply = await guard(self._keep_once(
                keys=[self._key(email), f"{PREFIX}sent-key:{wire_json.dumps([email, key])}"],
                args=[self.window.messages, wire_json.dumps(message),
                      math.ceil(self.window.seconds), message["id"], message["timestamp"]]))
        except StoreUnavailable:
            self.on_unreachable()
            raise
        if kept:
            return KeptOnce(str(reply))
        first = wire_json.loads(reply)
        if first["id"] == message["id"]:  # redis-py ran the script again after a lost reply
            return KeptOnce(str(first["cursor"]))
        return KeptOnce(str(first["cursor"]), first)

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

    async def latest(self, email: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` messages in the window, oldest first."""
        entries = await guard(self.redis.xrevrange(self._key(email),
                                                    count=min(count, self.window.messages)))
        return _messages([entry for entry in entries or [] if self._young(str(entry[0]))])

    def order(self, cursor: str) -> tuple[int, ...] | None:
        """``(milliseconds, sequence)`` of an entry id, else None."""
        match = ENTRY_ID.match(cursor)
        return (int(match[1]), int(match[2])) if match else None

    def _young(self, entry_id: str) -> bool:
        """True when the entry was added within the window's age (Redis's clock)."""
        order = self.order(entry_id)
        return order is not None and order[0] >= self.window.oldest(time.time()) * 1000

    async def close(self) -> None:
        """Nothing to do: the client is shared with the other stores."""


def _messages(newest_first: list[Any]) -> list[dict[str, Any]]:
    return [{**wire_json.loads(fields["m"]), "cursor": str(entry_id)}
            for entry_id, fields in reversed(newest_first)]
