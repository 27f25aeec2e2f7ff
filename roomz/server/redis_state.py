"""Shared state for several server nodes on one Redis: links, limits, sessions, emits.

Who is connected where is :mod:`roomz.server.redis_presence`'s.

Only imported with ``--redis-url``. Every Redis failure becomes :class:`StoreUnavailable`,
which the server answers with "try again shortly" while keeping its connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from .internals import AsyncPubSubManager, FanOutManager
from .magic_links import (
    AFTERLIFE_SECONDS,
    MAX_WRONG_CODES,
    WAITING_SECONDS,
    Confirmation,
    Confirmed,
    NewLink,
    OpenLink,
    Polled,
    Status,
    new_code,
    token_hash,
    typed_code,
)
from .rate_limit import WINDOW_SECONDS, Quota, Refusal
from .session_records import Standing
from .unavailable import StoreUnavailable

if TYPE_CHECKING:
    from .redis_presence import RedisPresence

log = logging.getLogger("roomz.server")
T = TypeVar("T")

PREFIX = "roomz:"
RESUBSCRIBE_FIRST_DELAY = 0.1  # after the bus is lost, a node tries to listen again this soon
RESUBSCRIBE_MAX_DELAY = 0.5  # and, while Redis stays away, this often
RESUBSCRIBE_WAIT_SECONDS = 3.0
#: The ``host_id`` of the messages the history's script publishes: no node's own, so every
#: node delivers them, the one that kept them included, in the order Redis kept them.
HISTORY_HOST = "history"
#: How long a node that kept a message waits to deliver it to its own connections (it
#: comes back by the bus), before acknowledging it anyway.
DELIVERED_HERE_SECONDS = 1.0
ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
#: Rooms :attr:`RedisFanOutManager.delivered` holds before those without a local member go.
DELIVERED_ROOMS = 1024


async def guard(call: Awaitable[T]) -> T:
    """``await call``, a Redis failure raised as :class:`StoreUnavailable`: the one error
    every shared store raises when it cannot answer."""
    try:
        return await call
    except (RedisError, OSError) as exc:  # an error answer is a refusal; the rest may have run
        raise StoreUnavailable(str(exc), maybe_done=not isinstance(exc, ResponseError)) from exc


#: Fail fast, so no request hangs on a Redis that went away.
CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": 2.0, "socket_connect_timeout": 2.0, "health_check_interval": 10,
    # A pooled connection that died with Redis gets one retry on a fresh one.
    "retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError],
}


class BusSilent(Exception):
    """The bus's subscription heard nothing, not even its own PING, for too long."""


#: The subscriber pings its quiet subscription this often; silent twice as long, it is lost.
BUS_PING_SECONDS = 1.0

#: The message bus's subscriber waits on an idle socket: no read timeout there.
BUS_OPTIONS = {"socket_connect_timeout": 2.0, "health_check_interval": 10}


def connect(url: str) -> aioredis.Redis:
    """A Redis client for the shared stores."""
    return aioredis.from_url(url, decode_responses=True, **CLIENT_OPTIONS)


#: Redis's own clock, so that nodes whose clocks differ agree on every link's times.
CLOCK = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "
#: How long Redis keeps the reply of a :func:`once` script's run, for that run sent again.
RUN_REPLY_SECONDS = 60


def once(script: str) -> str:
    """``script``, run once however often it is sent. redis-py sends a command again when
    the connection drops before its reply came (``CLIENT_OPTIONS``' retry), and a second
    run would find its own change made: a link used up, an answer taken. The first run
    keeps its reply under its last key, which names the run (:func:`run_key`); a run sent
    again gets that reply."""
    return f"""
local function run()
{script}
end
local first = redis.call('GET', KEYS[#KEYS])
if first then return cjson.decode(first) end
local reply = run()
redis.call('SET', KEYS[#KEYS], cjson.encode(reply), 'EX', {RUN_REPLY_SECONDS})
return reply"""


def run_key() -> str:
    """A new name for one run of a :func:`once` script: its last key."""
    return f"{PREFIX}run:{secrets.token_hex(16)}"


#: Is the link in KEYS[1] open (nobody used it, not expired)? ``h`` holds email, status, expires.
_OPEN = "h[1] and h[2] == 'pending' and now < tonumber(h[3])"


class RedisMagicLinks:
    """Magic links and their sign-ins as expiring hashes, shared by every node.

    One hash per link (``sign-in:TOKEN-HASH``) and one key from the sign-in id's hash to
    it (``sign-in-id:ID-HASH``), both living as long as the link and its afterlife. Each
    step is one Lua script, so that a link is used once whichever nodes race for it, and
    every time is Redis's, so that the nodes' clocks need not agree.
    """

    CREATE = CLOCK + """
        redis.call('HSET', KEYS[1], 'email', ARGV[1], 'sign_in', ARGV[2], 'code', ARGV[3],
                   'expires', tostring(now + tonumber(ARGV[4])), 'status', 'pending',
                   'wrong', 0)
        redis.call('EXPIRE', KEYS[1], ARGV[5])
        redis.call('SET', KEYS[2], ARGV[6], 'EX', ARGV[5])"""
    PEEK = CLOCK + """
        local h = redis.call('HMGET', KEYS[1], 'email', 'status', 'expires', 'polled')
        if not (""" + _OPEN + """) then return false end
        local waiting = 0
        if h[4] and now - tonumber(h[4]) < tonumber(ARGV[1]) then waiting = 1 end
        return {h[1], waiting}"""
    REDEEM = CLOCK + """
        local h = redis.call('HMGET', KEYS[1], 'email', 'status', 'expires')
        if not (""" + _OPEN + """) then return false end
        redis.call('HSET', KEYS[1], 'status', ARGV[1])
        return h[1]"""
    CONFIRM = CLOCK + """
        local h = redis.call('HMGET', KEYS[1], 'email', 'status', 'expires', 'code')
        if not (""" + _OPEN + """) then return {'gone'} end
        if h[4] == ARGV[1] then
            redis.call('HSET', KEYS[1], 'status', 'approved')
            return {'approved', h[1]}
        end
        local wrong = redis.call('HINCRBY', KEYS[1], 'wrong', 1)
        if wrong >= tonumber(ARGV[2]) then
            redis.call('HSET', KEYS[1], 'status', 'too-many-codes')
            return {'too-many', h[1]}
        end
        return {'wrong', h[1], tonumber(ARGV[2]) - wrong}"""
    POLL = CLOCK + """
        local h = redis.call('HMGET', KEYS[1], 'email', 'status', 'expires', 'polled')
        if not h[1] then return {'unknown'} end
        if h[2] == 'approved' then return {'approved', h[1]} end
        if h[2] ~= 'pending' then return {h[2]} end
        if now >= tonumber(h[3]) then return {'expired'} end
        if h[4] and now - tonumber(h[4]) < tonumber(ARGV[1]) then return {'slow-down'} end
        redis.call('HSET', KEYS[1], 'polled', tostring(now))
        return {'pending'}"""
    COLLECT = """
        if redis.call('HGET', KEYS[1], 'status') ~= 'approved' then return 0 end
        redis.call('HSET', KEYS[1], 'status', 'terminal')
        return 1"""

    def __init__(self, redis: aioredis.Redis, lifetime_seconds: float) -> None:
        self.redis = redis
        self.lifetime_seconds = lifetime_seconds
        self._create = redis.register_script(self.CREATE)
        self._peek = redis.register_script(self.PEEK)
        # Each a change that, made twice, would answer the second time as if made by another.
        self._redeem = redis.register_script(once(self.REDEEM))
        self._confirm = redis.register_script(once(self.CONFIRM))
        self._poll = redis.register_script(once(self.POLL))
        self._collect = redis.register_script(once(self.COLLECT))

    @staticmethod
    def _link_key(token: str) -> str:
        return f"{PREFIX}sign-in:{token_hash(token)}"

    async def create(self, email: str) -> NewLink:
        """Store a new link for ``email``; its token and sign-in id are never stored."""
        link = NewLink(secrets.token_urlsafe(32), secrets.token_urlsafe(32), new_code())
        sign_in = token_hash(link.sign_in_id)
        ttl = max(1, math.ceil(self.lifetime_seconds + AFTERLIFE_SECONDS))
        await guard(self._create(
            keys=[self._link_key(link.token), f"{PREFIX}sign-in-id:{sign_in}"],
            args=[email, sign_in, link.code, self.lifetime_seconds, ttl,
                  token_hash(link.token)]))
        return link

    async def peek(self, token: str) -> OpenLink | None:
        """The open link of ``token``, or None; uses nothing."""
        found = await guard(self._peek(keys=[self._link_key(token)], args=[WAITING_SECONDS]))
        return OpenLink(str(found[0]), bool(found[1])) if found else None

    async def redeem(self, token: str, by: Status = Status.TOKEN) -> str | None:
        """Use up ``token``; its email, or None when unknown, used or expired."""
        email = await guard(self._redeem(keys=[self._link_key(token), run_key()], args=[by.value]))
        return str(email) if email else None

    async def confirm(self, token: str, code: str) -> Confirmed:
        """Approve the sign-in when ``code`` is its code; count a wrong one."""
        answer = await guard(self._confirm(keys=[self._link_key(token), run_key()],
                                            args=[typed_code(code), MAX_WRONG_CODES]))
        outcome = Confirmation(answer[0])
        email = str(answer[1]) if len(answer) > 1 else ""
        return Confirmed(outcome, email, int(answer[2]) if len(answer) > 2 else 0)

    async def poll(self, sign_in_id: str, min_gap: float) -> Polled:
        """Where the sign-in stands; a pending one records when its client last asked."""
        key = await self._key_of(sign_in_id)
        if key is None:
            return Polled(Status.UNKNOWN)
        answer = await guard(self._poll(keys=[key, run_key()], args=[min_gap]))
        return Polled(Status(answer[0]), str(answer[1]) if len(answer) > 1 else "")

    async def collect(self, sign_in_id: str) -> bool:
        """Approved -> collected, once, whichever node asks."""
        key = await self._key_of(sign_in_id)
        return key is not None and bool(await guard(self._collect(keys=[key, run_key()])))

    async def _key_of(self, sign_in_id: str) -> str | None:
        """The key of the link whose sign-in is ``sign_in_id``, or None."""
        found = await guard(self.redis.get(f"{PREFIX}sign-in-id:{token_hash(sign_in_id)}"))
        return f"{PREFIX}sign-in:{found!s}" if found is not None else None


class RedisRateLimiter:
    """The sliding windows of :class:`RateLimiter`, one sorted set per key, shared by nodes."""

    def __init__(self, redis: aioredis.Redis, window_seconds: float = WINDOW_SECONDS) -> None:
        self.redis = redis
        self.window_seconds = window_seconds

    async def hit(self, quotas: Sequence[Quota]) -> Refusal | None:
        """Record one hit in every quota when all allow it and return None; otherwise record
        nothing and return the refusal that lasts longest."""
        now, member = time.time(), uuid.uuid4().hex
        names = [f"{PREFIX}rate:{quota.key}" for quota in quotas]
        # Add first and count in one transaction, so that nodes racing each other cannot
        # both slip under a limit; a refused hit is then taken back from every window.
        async with self.redis.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.zremrangebyscore(name, 0, now - self.window_seconds)
                pipe.zadd(name, {member: now})
                pipe.zcard(name)
                pipe.zrange(name, 0, 0, withscores=True)
                pipe.expire(name, int(self.window_seconds) + 1)
            results = await guard(pipe.execute())
        refusals = []
        for i, quota in enumerate(quotas):
            _, _, count, oldest, _ = results[5 * i:5 * i + 5]
            if count > quota.limit:
                refusals.append(Refusal(quota, float(oldest[0][1]) + self.window_seconds - now))
        if not refusals:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.zrem(name, member)
            await guard(pipe.execute())
        return max(refusals, key=lambda refusal: refusal.retry_after)


class RedisSessionRecords:
    """Ended sessions: one expiring key per logged-out session, user versions in one hash.

    A user's version is 1 + how often all of their sessions were ended.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def open(self) -> None:
        """Nothing to do: the client connects when first used."""

    async def standing(self, session_ids: Collection[str],
                       emails: Collection[str]) -> Standing:
        """Which of ``session_ids`` were logged out, and the versions of ``emails``."""
        ids, users = list(session_ids), list(emails)
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            if ids:
                pipe.mget([f"{PREFIX}revoked:{session_id}" for session_id in ids])
            if users:
                pipe.hmget(f"{PREFIX}versions", users)
            answers = await guard(pipe.execute())
        hits = answers.pop(0) if ids else []
        times_ended = answers.pop(0) if users else []
        return Standing(
            frozenset(i for i, hit in zip(ids, hits, strict=True) if hit),
            {email: 1 + int(times) for email, times in zip(users, times_ended, strict=True)
             if times is not None})

    async def revoke(self, session_id: str, expires_at: int) -> None:
        """Record that ``session_id`` ended, until ``expires_at`` (Unix time), on every node."""
        lifetime = max(1, int(expires_at - time.time()))
        await guard(self.redis.set(f"{PREFIX}revoked:{session_id}", 1, ex=lifetime))

    async def end_all(self, email: str) -> None:
        """End every session of ``email`` so far, on every node."""
        await guard(self.redis.hincrby(f"{PREFIX}versions", email, 1))

    async def purge_expired(self) -> int:
        """Nothing to do: Redis expires the keys of logged-out sessions itself."""
        return 0

    async def close(self) -> None:
        """Nothing to do: the client is shared with the other stores."""


class RedisFanOutManager(AsyncPubSubManager, FanOutManager):  # type: ignore[misc]
    """python-socketio's pub/sub manager on Redis (emits reach every node), with queued
    local fan-out.

    Built on the two points python-socketio's pub/sub manager leaves to its backends
    (as its own Redis manager is): :meth:`_publish` sends a message to the other nodes,
    :meth:`_listen` yields theirs.

    Publishing goes through the stores' client and raises :class:`StoreUnavailable` when
    Redis is down, so the sender learns its message did not reach every node
    (python-socketio's Redis manager logs "giving up" and returns). After Redis comes
    back (a publish failed, or this node's own subscription broke), the first publishes
    wait (briefly) until as many nodes listen again as listened before: a message
    published before they resubscribe would reach no one on those nodes, yet look
    delivered.

    Listening starts with :meth:`start`, before the server takes its first client
    (python-socketio would start it at the first connection, missing what other nodes
    publish meanwhile), and ends with :meth:`stop` (python-socketio never ends it).

    A kept message is published by the history as it is kept (:meth:`kept_message`), and
    this node delivers it, like every node, as it hears it. A subscription that broke may
    have lost some: when the node listens again, :attr:`after_gap` runs before anything
    new is delivered, with where each room stood (:attr:`delivered`).

    ``_publish`` and ``_listen`` are listed with the other private names in
    :mod:`roomz.server.internals` and checked in ``tests/server/test_internals.py``.
    """

    name = "roomz-redis"

    def __init__(self, url: str, publisher: aioredis.Redis, channel: str = "socketio") -> None:
        super().__init__(channel=channel)
        self.redis_url = url  # the subscriber's own connection: it waits on an idle socket
        self._publisher = publisher  # the stores' client: publishing needs nothing else
        #: Set while this node is subscribed, so start-up can wait for it.
        self.subscribed = asyncio.Event()
        self._listeners = 0  # nodes that heard the last publish before an outage
        self._recovering = False
        self._recovery: asyncio.Future[None] | None = None  # the wait all publishes share
        self._initialized = False
        self._listening: asyncio.Task[Any] | None = None  # the task reading _listen()
        self._stopping = False
        #: The cursor of the last kept message this node delivered to each room.
        self.delivered: dict[str, str] = {}
        self._prune_at = DELIVERED_ROOMS
        #: The kept messages delivered_here() waits for: (room, cursor).
        self._waiting: dict[tuple[str, str], asyncio.Future[None]] = {}
        #: Awaited when the node listens again after its subscription broke, with the time
        #: it noticed (``time.time()``), before the new subscription delivers anything.
        self.after_gap: Callable[[float], Awaitable[None]] | None = None
        #: Redis's time (an entry id) up to which this node heard every kept message:
        #: the newest it delivered, or when it last subscribed (None: not yet).
        self.heard_up_to: str | None = None

    def initialize(self) -> None:
        """Start the subscriber, once: :meth:`start` calls this before serving, and
        python-socketio again at the first connection."""
        if not self._initialized:
            self._initialized = True
            super().initialize()

    async def start(self, timeout: float) -> bool:
        """Start listening to the other nodes; True once subscribed, False if not within
        ``timeout`` seconds (Redis may be down: the subscriber keeps trying)."""
        self.initialize()
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def stop(self, timeout: float) -> None:
        """Stop listening, waiting at most ``timeout`` seconds: redis-py may swallow a
        cancellation that lands while it waits for an answer."""
        self._stopping = True
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.wait({self._listening}, timeout=timeout)

    def unreachable(self) -> None:
        """Redis failed another store of this node: the next publishes wait for the
        listeners, as after a publish that failed (the other nodes may be resubscribing)."""
        self._recovering = True

    async def listening(self) -> None:
        """Return once the other nodes listen: at once, unless Redis was away (then up to
        3 s). The history calls it before it keeps a message, so that the wait comes before
        the message has its place in the history, not between that and its publish: a
        later message of another node would overtake it meanwhile."""
        if self._recovering:
            # One wait for the listeners, however many messages are held up by it.
            if self._recovery is None or self._recovery.done():
                self._recovery = asyncio.ensure_future(self._await_listeners())
            await asyncio.shield(self._recovery)

    def kept_message(self, room: str, message: dict[str, Any]) -> tuple[str, str]:
        """The bus message that delivers the kept ``message`` to ``room`` on every node (as
        python-socketio's ``emit`` publishes one), in two pieces: the script that keeps it
        puts its entry id, its cursor, between them."""
        fields = {name: value for name, value in message.items() if name != "cursor"}
        encoded: str = self.json.dumps({
            "method": "emit", "event": "message", "binary": False, "namespace": "/",
            "room": room, "skip_sid": None, "callback": None, "host_id": HISTORY_HOST,
            "data": [{**fields, "cursor": ""}]})  # last of all: the empty cursor
        head, _, tail = encoded.rpartition('""')
        return head + '"', '"' + tail

    def heard(self, listeners: int) -> None:
        """A publish (the history's) reached ``listeners`` nodes."""
        self._listeners = listeners

    async def _publish(self, data: Any) -> Any:
        """Send ``data`` (an emit, a disconnect, a room change) to the other nodes; returns
        how many nodes listen."""
        await self.listening()
        try:
            # self.json: the server packets' own (msgspec), which the listeners decode with
            heard = await guard(self._publisher.publish(self.channel, self.json.dumps(data)))
        except StoreUnavailable:
            self._recovering = True
            raise
        self._listeners = heard
        return heard

    async def _await_listeners(self) -> None:
        """Wait until the nodes that listened before the outage listen again (up to 3 s;
        a node that died meanwhile never will)."""
        deadline = asyncio.get_running_loop().time() + RESUBSCRIBE_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            counts = await guard(self._publisher.pubsub_numsub(self.channel))
            if counts and counts[0][1] >= self._listeners:
                break
            await asyncio.sleep(0.05)
        self._recovering = False

    async def _listen(self) -> AsyncIterator[Any]:
        """The other nodes' messages, as published; resubscribes after any failure.

        One subscription at a time, on a connection of its own (the old one is closed
        first), and retries at most half a second apart, so a Redis restart costs this
        node seconds, not a minute (python-socketio's own backs off up to 60 s).
        """
        self._listening = asyncio.current_task()  # the subscriber that stop() ends
        delay = RESUBSCRIBE_FIRST_DELAY
        lost_at: float | None = None  # since when the bus has been lost, if it was
        while not self._stopping:
            client = aioredis.from_url(self.redis_url, **BUS_OPTIONS)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if lost_at is not None and self.after_gap is not None:
                    await self.after_gap(lost_at)  # before the new subscription delivers
                # Heard from now on: what came before was, or after_gap saw to it.
                seconds, micros = await guard(self._publisher.time())
                self._heard(f"{seconds * 1000 + micros // 1000}-0")
                lost_at = None
                self.subscribed.set()
                log.info("subscribed to the message bus")
                delay = RESUBSCRIBE_FIRST_DELAY
                async for message in self._heard_or_silent(pubsub):
                    decoded = self._decoded(message["data"])
                    yield decoded
                    # python-socketio's loop asks for the next once it delivered this
                    self._handed_over(decoded)
            except Exception as exc:  # redis-py raises more than RedisError as a connection
                # goes (redis/redis-py#2567): whatever it was, the bus is lost.
                if self.subscribed.is_set():  # messages published from now on are lost here
                    lost_at = time.time()
                self.subscribed.clear()
                # Redis went away: the other nodes are resubscribing too, and a publish
                # that comes back before they do would reach none of their connections.
                self._recovering = True
                known = isinstance(exc, (RedisError, OSError))
                log.warning("message bus lost (%s%s); resubscribing in %.1f s",
                            "" if known else f"{type(exc).__name__}: ", exc, delay)
                if not known:
                    log.debug("the message bus's error", exc_info=True)
            finally:  # each closed, whatever a broken connection raises as it closes
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY)
        # Stopped before its cancellation arrived: end as a cancelled subscriber does, quietly.
        raise asyncio.CancelledError

    async def _heard_or_silent(self, pubsub: Any) -> AsyncIterator[dict[str, Any]]:
        """The subscription's messages; raises :class:`BusSilent` when it stays silent,
        its own PING unanswered too (a dead route closes nothing, and redis-py's read
        waits for good: its health check runs only between reads)."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=BUS_PING_SECONDS)
            if message is not None:
                heard = loop.time()
                if message["type"] == "message":
                    yield message
                continue
            if loop.time() - heard > 2 * BUS_PING_SECONDS:
                raise BusSilent(f"nothing heard for {loop.time() - heard:.1f} s")
            await pubsub.ping()  # its pong is a message too

    def _decoded(self, data: bytes) -> Any:
        """A published message, decoded for python-socketio's loop (which takes dicts too)."""
        try:
            return self.json.loads(data)
        except (ValueError, RecursionError):
            return data  # python-socketio's loop skips what does not decode

    def _handed_over(self, message: Any) -> None:
        """python-socketio's loop delivered ``message`` on this node: if it was a kept
        message, note where its room stands, and wake whoever waits for it."""
        if not (isinstance(message, dict) and message.get("host_id") == HISTORY_HOST):
            return
        try:
            room, cursor = message["room"], message["data"][0]["cursor"]
        except (KeyError, IndexError, TypeError):
            return
        self.delivered[room] = cursor
        self._heard(cursor)
        waiter = self._waiting.pop((room, cursor), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(self.delivered) > self._prune_at:
            self._forget_empty_rooms()

    async def delivered_here(self, room: str, cursor: str) -> bool:
        """Wait until this node delivered the kept message ``cursor`` to ``room``; False
        if not within :data:`DELIVERED_HERE_SECONDS` (its subscription broke: then
        :attr:`after_gap` sees to its connections)."""
        if self._reached(room, cursor):
            return True
        waiting = (room, cursor)  # entry ids are unique within one user's stream only
        waiter = self._waiting.setdefault(waiting, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), DELIVERED_HERE_SECONDS)
        except asyncio.TimeoutError:
            return self._reached(room, cursor)
        finally:
            self._waiting.pop(waiting, None)
        return True

    def _heard(self, cursor: str) -> None:
        """Every message kept before ``cursor`` (Redis's clock) was heard here."""
        order, last = entry_order(cursor), entry_order(self.heard_up_to or "")
        if order is not None and (last is None or order > last):
            self.heard_up_to = cursor

    def _reached(self, room: str, cursor: str) -> bool:
        """True when this node delivered ``cursor`` to ``room``, or a later message."""
        last = self.delivered.get(room)
        if last is None:
            return False
        last_order, order = entry_order(last), entry_order(cursor)
        return last_order is not None and order is not None and last_order >= order

    def _forget_empty_rooms(self) -> None:
        """Keep :attr:`delivered` to the rooms with a member on this node."""
        for room in [room for room in self.delivered
                     if next(iter(self.get_participants("/", room)), None) is None]:
            del self.delivered[room]
        self._prune_at = max(DELIVERED_ROOMS, 2 * len(self.delivered))


def entry_order(entry_id: str) -> tuple[int, int] | None:
    """``(milliseconds, sequence)`` of a Redis stream entry id, else None."""
    match = ENTRY_ID.match(entry_id)
    return (int(match[1]), int(match[2])) if match else None


def background(presence: RedisPresence,
               manager: RedisFanOutManager) -> Callable[[Any], AsyncIterator[None]]:
    """An aiohttp cleanup context: subscribe before serving, then beat until the end."""
    async def heartbeat(app: Any) -> AsyncIterator[None]:
        # A message published before we listen would never reach our clients.
        if not await manager.start(timeout=5):
            log.warning("not subscribed to the message bus yet; Redis may be down")
        task = asyncio.create_task(presence.run())
        yield
        presence.stop()
        task.cancel()
        # Bounded: a cancellation redis-py swallowed ends each loop at its next turn.
        timeout = presence.heartbeat_seconds + 1
        await asyncio.gather(manager.stop(timeout), asyncio.wait([task], timeout=timeout))
        await presence.leave_all()
    return heartbeat
