"""Who is connected on every node sharing Redis: connection counts per user, what ``who``
lists, and the counting out of a node that died.

Redis holds, per user, their connection count on each node (``presence:EMAIL``: node ->
count); per node, one record of each of its connections (``connections:NODE``: connection
id -> :class:`ConnectionRecord`), read whole when the node dies; and per user, where their
connections are (``who:EMAIL``: connection id -> node), so that ``who`` reads their records
alone, however many others there are.

Only imported with ``--redis-url``. Every Redis failure becomes :class:`StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .presence import Departure, DepartureHandler
from .redis_state import PREFIX, guard
from .settings import ServerSettings
from .unavailable import StoreUnavailable
from .who import ClientInfo, Listed

log = logging.getLogger("roomz.server")


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """One connection as the nodes sharing Redis keep it: a :class:`Listed` for ``who``,
    carrying the ``user`` object its events carry, for its ``user_left`` should its node die."""

    email: str
    connection_id: str
    node: str
    user: dict[str, Any]
    client: ClientInfo

    @property
    def display_name(self) -> str | None:
        """Its display name, as its ``user`` object has it."""
        return self.user.get("display_name")

    def text(self) -> str:
        """What Redis keeps, as JSON: all but the id and the node, which are its keys."""
        return json.dumps({"user": self.user, **self.client.listed()})

    @classmethod
    def of_text(cls, connection_id: str, node: str, text: str) -> ConnectionRecord:
        """The record :meth:`text` wrote; raises ``ValueError`` for anything else."""
        try:
            fields = json.loads(text)
            user = {**fields["user"], "email": str(fields["user"]["email"])}
            return cls(user["email"], connection_id, node, user,
                       ClientInfo(fields["kind"], fields["name"], str(fields["since"])))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a connection record: {text[:80]!r}") from exc


class RedisPresence:
    """Connection counts per user and node; a node that stops beating is counted out.

    Each node keeps its own counts as the truth and writes them back whenever Redis was
    unreachable for a while, so a restart of Redis loses nothing for long. Beside the
    counts, each node keeps a record of each of its connections in Redis, so that when it
    dies, one of the others can send ``user_left`` for them, and so that ``who`` lists them
    on every node.
    """

    def __init__(self, redis: aioredis.Redis,
                 node_timeout: float = ServerSettings.node_timeout) -> None:
        self.redis = redis
        self.node_id = uuid.uuid4().hex
        self.node_timeout = node_timeout
        self.counts: Counter[str] = Counter()
        #: The record of each of this node's connections, by connection id.
        self.records: dict[str, ConnectionRecord] = {}
        #: Sends ``user_left`` for the connections of a node that died; set by the server.
        self.on_departures: DepartureHandler | None = None
        self._stale = False
        self._stopping = False
        self._closing = False  # the node is stopping: its connections are closing
        self._unanswered = False  # Redis failed while the node was stopping

    @property
    def heartbeat_seconds(self) -> float:
        """How often this node says it is alive: three beats fit in its timeout."""
        return self.node_timeout / 3

    async def join(self, email: str, connection_id: str, user: dict[str, Any],
                   client: ClientInfo) -> int:
        """Count a new connection of ``email`` on this node; returns its total on all nodes."""
        self.counts[email] += 1
        record = self.records[connection_id] = ConnectionRecord(
            email, connection_id, self.node_id, user, client)
        key = f"{PREFIX}presence:{email}"
        try:
            # One round trip, the total read in the same transaction; our count is set, not
            # incremented, so a retried transaction or a write-back cannot count twice.
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, self.node_id, self.counts[email])
                pipe.hset(_records_key(self.node_id), connection_id, record.text())
                pipe.hset(_who_key(email), connection_id, self.node_id)
                self._known(pipe)
                pipe.hvals(key)
                *_, revived, _, values = await guard(pipe.execute())
            self._stale |= bool(revived)
            return _total(values)
        except StoreUnavailable:
            self.counts[email] -= 1
            if self.counts[email] <= 0:
                del self.counts[email]
            del self.records[connection_id]
            self._stale = True  # the count may have landed: write our counts back
            raise

    async def leave(self, email: str, connection_id: str) -> int:
        """Count a closed connection of ``email``; returns how many remain on all nodes."""
        self.counts[email] -= 1
        local = self.counts[email]
        if local <= 0:
            del self.counts[email]
        self.records.pop(connection_id, None)
        if self._unanswered:  # one timeout per stop, not one per connection
            raise StoreUnavailable("Redis did not answer as this node stopped")
        key = f"{PREFIX}presence:{email}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                if local <= 0:
                    pipe.hdel(key, self.node_id)
                else:
                    pipe.hset(key, self.node_id, local)
                pipe.hdel(_records_key(self.node_id), connection_id)
                pipe.hdel(_who_key(email), connection_id)
                self._known(pipe)
                pipe.hvals(key)
                *_, revived, _, values = await guard(pipe.execute())
            self._stale |= bool(revived)
            return _total(values)
        except StoreUnavailable:
            self._stale = True  # write our counts back once Redis answers again
            self._unanswered = self._closing
            raise

    def closing(self) -> None:
        """The node is stopping and closes its connections next. It beats no more (a
        beat started now would only hold the stop up while Redis is silent), and Redis
        gets one chance: once a leave fails, the other leaves and :meth:`leave_all` keep
        away from it, as each would wait out the same timeout; the other nodes count this
        node out (and send ``user_left`` for its connections) once its heartbeat lapses."""
        self._closing = True
        self.stop()

    async def rename(self, connection_id: str, user: dict[str, Any]) -> None:
        """Keep the ``user`` object of one of our connections current (its display name)."""
        if connection_id not in self.records:
            return
        record = self.records[connection_id] = dataclasses.replace(
            self.records[connection_id], user=user)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(_records_key(self.node_id), connection_id, record.text())
                self._known(pipe)
                _, revived, _ = await guard(pipe.execute())
            self._stale |= bool(revived)
        except StoreUnavailable:
            self._stale = True  # the write-back carries the new name

    def _known(self, pipe: Any) -> None:
        """Queue, with a write of this node's records, what gets them removed should the
        node die before its next beat: its heartbeat key (when Redis lost it, the answer
        is true, and the next beat writes everything back) and its place among the nodes
        (else, after Redis restarted without its data, no node would count it out)."""
        pipe.set(f"{PREFIX}node:{self.node_id}", 1, px=int(self.node_timeout * 1000), nx=True)
        pipe.sadd(f"{PREFIX}nodes", self.node_id)

    async def connections(self, email: str, here: Iterable[Listed]) -> list[Listed]:
        """The connections of ``email`` on every live node: this node's from ``here``, the
        others' from Redis (one read of where they are, and one more of their records and
        of whether the nodes holding them still beat). Raises :class:`StoreUnavailable`."""
        where = await guard(self.redis.hgetall(_who_key(email)))
        by_node: dict[str, list[str]] = {}
        for connection_id, node in where.items():
            if node != self.node_id:
                by_node.setdefault(str(node), []).append(str(connection_id))
        elsewhere: list[Listed] = []
        if by_node:
            async with self.redis.pipeline(transaction=False) as pipe:
                for node, ids in by_node.items():
                    pipe.exists(f"{PREFIX}node:{node}")
                    pipe.hmget(_records_key(node), ids)
                answers = await guard(pipe.execute())
            for (node, ids), beating, texts in zip(by_node.items(), answers[::2], answers[1::2],
                                                   strict=True):
                if not beating:  # it holds none, even before a beat of ours forgets it
                    continue
                # A record gone since the first read: its connection closed meanwhile.
                found = {i: text for i, text in zip(ids, texts, strict=True) if text is not None}
                elsewhere.extend(_records(node, found))
        return [*(connection for connection in here if connection.email == email),
                *elsewhere]

    async def beat(self) -> None:
        """Say this node is alive, repair our counts if needed, and count dead nodes out."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(f"{PREFIX}node:{self.node_id}")
            pipe.set(f"{PREFIX}node:{self.node_id}", 1, px=int(self.node_timeout * 1000))
            pipe.sadd(f"{PREFIX}nodes", self.node_id)
            alive, _, _ = await guard(pipe.execute())
        if self._stale or not alive:  # not alive: Redis restarted (or this is our first beat)
            await self._write_back()
        for node in await guard(self.redis.smembers(f"{PREFIX}nodes")):
            if not await guard(self.redis.exists(f"{PREFIX}node:{node!s}")):
                await self._forget(str(node))

    async def _write_back(self) -> None:
        self._stale = False  # a join or leave failing from here on asks for another
        gone = [key async for key in self.redis.scan_iter(match=f"{PREFIX}presence:*")
                if key.removeprefix(f"{PREFIX}presence:") not in self.counts]
        recorded = await guard(self.redis.hgetall(_records_key(self.node_id)))
        closed = {connection: text for connection, text in recorded.items()
                  if connection not in self.records}
        # Read the counts and queue their writes in one step: joins and leaves go on meanwhile.
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in gone:
                pipe.hdel(key, self.node_id)
            for email, count in self.counts.items():
                pipe.hset(f"{PREFIX}presence:{email}", self.node_id, count)
            if closed:
                pipe.hdel(_records_key(self.node_id), *closed)
            for record in _records(self.node_id, closed):
                pipe.hdel(_who_key(record.email), record.connection_id)
            if self.records:
                pipe.hset(_records_key(self.node_id), mapping={
                    connection: record.text() for connection, record in self.records.items()})
            for record in self.records.values():
                pipe.hset(_who_key(record.email), record.connection_id, self.node_id)
            await guard(pipe.execute())

    async def _forget(self, node: str) -> None:
        # Its who records go before it leaves the set of nodes: should this node die
        # midway, the next beat of any node forgets it again, whole.
        await self._drop_counts(node)
        # Whoever removes the node takes its connections, all in one step: of all the nodes
        # that saw it die, exactly one sends user_left for them.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(f"{PREFIX}nodes", node)
            pipe.hgetall(_records_key(node))
            pipe.delete(_records_key(node))
            removed, texts, _ = await guard(pipe.execute())
        if not removed:
            return
        log.info("dropped the %d connections of node %s: it stopped beating", len(texts), node)
        departures = await self._departures(_records(node, texts))
        if departures and self.on_departures is not None:
            await self.on_departures(departures)

    async def _drop_counts(self, node: str) -> None:
        """Remove ``node``'s counts and who records as Redis holds them: those of a
        connection whose leave never reached Redis included."""
        records = _records(node, await guard(self.redis.hgetall(_records_key(node))))
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            async for key in self.redis.scan_iter(match=f"{PREFIX}presence:*"):
                pipe.hdel(key, node)
            for record in records:
                pipe.hdel(_who_key(record.email), record.connection_id)
            await guard(pipe.execute())

    async def _departures(self, records: Iterable[ConnectionRecord]) -> list[Departure]:
        """``user_left`` for each connection of a dead node, its count already dropped: the
        first one of a user counts the others still to go, as if they closed one by one."""
        by_email: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_email.setdefault(record.email, []).append(record.user)
        async with self.redis.pipeline(transaction=False) as pipe:
            for email in by_email:
                pipe.hvals(f"{PREFIX}presence:{email}")
            totals = await guard(pipe.execute())
        departures = []
        for (email, gone), counts in zip(by_email.items(), totals, strict=True):
            remaining = _total(counts) + len(gone)
            for user in gone:
                remaining -= 1
                departures.append(Departure(email, user, remaining))
        return departures

    async def run(self) -> None:
        """Beat every few seconds until :meth:`stop`; Redis outages are logged, not raised."""
        while not self._stopping:
            try:
                await guard(self.beat())  # the scans in beat() are not guarded one by one
            except StoreUnavailable as exc:
                self._stale = True
                log.warning("Redis unreachable (%s); retrying in %g s", exc,
                            self.heartbeat_seconds)
            except Exception:  # a heartbeat that stops would get this node's counts dropped
                self._stale = True
                log.exception("heartbeat failed; retrying in %g s", self.heartbeat_seconds)
            await asyncio.sleep(self.heartbeat_seconds)

    def stop(self) -> None:
        """End :meth:`run` at its next turn: redis-py may swallow a cancellation that lands
        while it waits for an answer, and the loop must end all the same."""
        self._stopping = True

    async def leave_all(self) -> None:
        """On a clean stop: remove this node's counts, connections and heartbeat. When
        Redis does not answer (or did not as the connections closed), say once that the
        other nodes will count this node out."""
        if not self._unanswered:
            try:
                # As Redis holds them: once out of the set of nodes, no node would ever
                # remove the count of a connection that closed while Redis was away.
                await self._drop_counts(self.node_id)
                await guard(self.redis.delete(_records_key(self.node_id)))
                await guard(self.redis.delete(f"{PREFIX}node:{self.node_id}"))
                await guard(self.redis.srem(f"{PREFIX}nodes", self.node_id))
                return
            except (StoreUnavailable, RedisError, OSError):
                pass
        log.warning("Redis did not answer as this node stopped: the other nodes will count "
                    "its connections out within %g s", self.node_timeout + self.heartbeat_seconds)


def _records_key(node: str) -> str:
    """The hash of a node's connections: connection id -> its :meth:`ConnectionRecord.text`."""
    return f"{PREFIX}connections:{node}"


def _who_key(email: str) -> str:
    """The hash of where a user's connections are: connection id -> its node."""
    return f"{PREFIX}who:{email}"


def _records(node: str, texts: Mapping[Any, Any]) -> list[ConnectionRecord]:
    """The records of ``node``'s hash (:func:`_records_key`), or of some of its connections;
    a malformed record is logged and left out."""
    records = []
    for connection, text in texts.items():
        try:
            records.append(ConnectionRecord.of_text(str(connection), node, str(text)))
        except ValueError as exc:
            log.warning("ignored a malformed connection record in Redis: %s", exc)
    return records


def _total(counts: list[str]) -> int:
    """A user's connections on all nodes, from the per-node counts of its presence hash."""
    return sum(max(int(count), 0) for count in counts)
