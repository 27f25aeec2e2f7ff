"""``RedisPresence``: connection counts of one user on several nodes, through a Redis outage
and the death of a node."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from roomz.server.presence import Departure, DepartureHandler
from roomz.server.redis_presence import RedisPresence
from roomz.server.redis_state import connect
from roomz.server.settings import ServerSettings
from roomz.server.unavailable import StoreUnavailable
from roomz.server.who import ClientInfo

from .redis_proc import RedisProcess

TIMEOUT = 5.0
ANN = "ann@example.com"
USER = {"id": f"user:{ANN}", "email": ANN, "display_name": None}
BOB = {"id": "user:bob@example.com", "email": "bob@example.com", "display_name": None}
CLIENT = ClientInfo("script", None, "2026-12-02T07:00:00+00:00")


@pytest.fixture
async def nodes(redis: RedisProcess) -> AsyncIterator[tuple[RedisPresence, RedisPresence]]:
    """The presence of two nodes sharing ``redis``, each with its own client."""
    one, two = connect(redis.url), connect(redis.url)
    yield RedisPresence(one), RedisPresence(two)
    await one.aclose()
    await two.aclose()


@contextlib.asynccontextmanager
async def beating(url: str, count: int, node_timeout: float = ServerSettings.node_timeout
                  ) -> AsyncIterator[list[RedisPresence]]:
    """``count`` nodes sharing the Redis at ``url``, each with its own client, each having
    beaten once: Redis knows them, so that they can be counted out."""
    clients = [connect(url) for _ in range(count)]
    try:
        nodes = [RedisPresence(client, node_timeout) for client in clients]
        for node in nodes:
            await asyncio.wait_for(node.beat(), TIMEOUT)
        yield nodes
    finally:
        for client in clients:
            await client.aclose()


def keep(handed: list[Departure]) -> DepartureHandler:
    """A node's ``on_departures`` that adds them to ``handed``."""
    async def handle(departures: Sequence[Departure]) -> None:
        handed.extend(departures)
    return handle


async def listed_in_redis(node: RedisPresence) -> list[str]:
    """The connections of Ann that Redis lists for ``who``, as ``node`` reads them."""
    return sorted(str(key) for key in await node.redis.hkeys(f"roomz:who:{ANN}"))


async def test_joins_and_leaves_on_two_nodes_add_up(
        nodes: tuple[RedisPresence, RedisPresence]) -> None:
    """Each call answers the user's total on all nodes, counting its own change."""
    a, b = nodes
    totals = [await asyncio.wait_for(a.join(ANN, "a1", USER, CLIENT), TIMEOUT),
              await asyncio.wait_for(b.join(ANN, "b1", USER, CLIENT), TIMEOUT),
              await asyncio.wait_for(a.join(ANN, "a2", USER, CLIENT), TIMEOUT),
              await asyncio.wait_for(b.leave(ANN, "b1"), TIMEOUT),
              await asyncio.wait_for(a.leave(ANN, "a1"), TIMEOUT),
              await asyncio.wait_for(a.leave(ANN, "a2"), TIMEOUT)]
    assert totals == [1, 2, 3, 2, 1, 0]
    assert await asyncio.wait_for(b.join("bob@example.com", "b2", USER, CLIENT), TIMEOUT) == 1


async def test_a_join_during_an_outage_fails_and_the_counts_come_back(
        nodes: tuple[RedisPresence, RedisPresence], redis: RedisProcess) -> None:
    """Redis down: join raises StoreUnavailable and counts nothing; the next beat after
    Redis is back writes this node's counts again, so the other node sees them."""
    a, b = nodes
    assert await asyncio.wait_for(a.join(ANN, "a1", USER, CLIENT), TIMEOUT) == 1
    redis.kill()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(a.join(ANN, "a2", USER, CLIENT), TIMEOUT)
    assert a.counts == {"ann@example.com": 1}
    await redis.start()  # empty: the restart lost every count
    await asyncio.wait_for(a.beat(), TIMEOUT)
    assert await asyncio.wait_for(b.join(ANN, "b1", USER, CLIENT), TIMEOUT) == 2


async def test_a_beat_after_an_unnoticed_redis_restart_writes_the_counts_back(
        nodes: tuple[RedisPresence, RedisPresence], redis: RedisProcess) -> None:
    """Redis restarts between two beats and nothing failed meanwhile: the next beat still
    sees that our counts are gone and writes them back."""
    a, b = nodes
    await asyncio.wait_for(a.beat(), TIMEOUT)
    assert await asyncio.wait_for(a.join(ANN, "a1", USER, CLIENT), TIMEOUT) == 1
    redis.kill()
    await redis.start()
    await asyncio.wait_for(a.beat(), TIMEOUT)
    assert await asyncio.wait_for(b.join(ANN, "b1", USER, CLIENT), TIMEOUT) == 2


async def test_the_connections_of_a_dead_node_are_announced_once(redis: RedisProcess) -> None:
    """A node stops beating: of the two that see it, exactly one is handed its connections,
    each with its user object as last named and the count left after it, as if they
    closed one by one."""
    async with beating(redis.url, 3) as (dead, one, two):
        handed: dict[str, list[Departure]] = {"one": [], "two": []}
        one.on_departures, two.on_departures = keep(handed["one"]), keep(handed["two"])
        await asyncio.wait_for(dead.join(ANN, "d1", USER, CLIENT), TIMEOUT)
        await asyncio.wait_for(dead.join(ANN, "d2", USER, CLIENT), TIMEOUT)
        await asyncio.wait_for(dead.rename("d2", {**USER, "display_name": "Phone"}), TIMEOUT)
        await asyncio.wait_for(one.join(ANN, "o1", USER, CLIENT), TIMEOUT)
        await asyncio.wait_for(dead.join("bob@example.com", "d3", BOB, CLIENT), TIMEOUT)
        await asyncio.wait_for(dead.leave("bob@example.com", "d3"), TIMEOUT)
        await dead.redis.delete(f"roomz:node:{dead.node_id}")  # as if its heartbeat expired

        await asyncio.wait_for(asyncio.gather(one.beat(), two.beat()), TIMEOUT)
        await asyncio.wait_for(asyncio.gather(one.beat(), two.beat()), TIMEOUT)

        departures = handed["one"] + handed["two"]
        assert [] in handed.values()
        assert sorted((d.email, str(d.user["display_name"])) for d in departures) == [
            (ANN, "None"), (ANN, "Phone")]
        assert [d.remaining for d in departures] == [2, 1]
        assert await asyncio.wait_for(two.join(ANN, "t1", USER, CLIENT), TIMEOUT) == 2


async def test_a_dead_nodes_who_records_go_with_it(redis: RedisProcess) -> None:
    """Each node lists the others' connections of a user from Redis, names included; once
    a node stops beating its connections are hidden, and once counted out they leave the
    user's hash for good, the others' staying."""
    async with beating(redis.url, 2) as (dead, alive):
        await asyncio.wait_for(dead.join(ANN, "d1", USER, CLIENT), TIMEOUT)
        await asyncio.wait_for(alive.join(ANN, "a1", USER, CLIENT), TIMEOUT)
        await asyncio.wait_for(alive.rename("a1", {**USER, "display_name": "Desk"}), TIMEOUT)

        async def elsewhere(node: RedisPresence) -> list[tuple[str, str | None]]:
            """What ``node`` lists from Redis: the other nodes' connections of Ann."""
            listed = await asyncio.wait_for(node.connections(ANN, []), TIMEOUT)
            return [(c.connection_id, c.display_name) for c in listed]

        assert (await elsewhere(dead), await elsewhere(alive)) == ([("a1", "Desk")],
                                                                   [("d1", None)])
        await dead.redis.delete(f"roomz:node:{dead.node_id}")  # as if its heartbeat expired
        assert await elsewhere(alive) == []  # hidden at once, though not yet forgotten
        await asyncio.wait_for(alive.beat(), TIMEOUT)
        assert await listed_in_redis(alive) == ["a1"]


async def test_a_node_stopped_after_an_outage_leaves_nothing_of_its_own_behind(
        tmp_path: Path) -> None:
    """A connection closes while Redis is away (which keeps its data: append-only file),
    and the node stops before its next beat wrote its state back: the clean stop still
    takes that connection's count and who record with it, which no other node would
    ever remove (a stopped node is no longer among those counted out)."""
    async with RedisProcess(persistent_dir=tmp_path) as redis, \
            beating(redis.url, 2) as (stopping, staying):
        await asyncio.wait_for(stopping.join(ANN, "s1", USER, CLIENT), TIMEOUT)
        redis.kill()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(stopping.leave(ANN, "s1"), TIMEOUT)
        await redis.start()  # s1 is still recorded, as its leave never reached Redis
        await asyncio.wait_for(stopping.leave_all(), TIMEOUT)
        await asyncio.wait_for(staying.beat(), TIMEOUT)

        assert await asyncio.wait_for(staying.join(ANN, "t1", USER, CLIENT), TIMEOUT) == 1
        assert await listed_in_redis(staying) == ["t1"]


async def test_a_stopping_node_gives_redis_one_chance_and_the_others_count_it_out(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """As its connections close at stop, the node's first leave finds Redis away: the
    other leaves and the clean stop then keep away from Redis even once it answers again
    (each would wait out the same timeout while Redis is silent), and say so in one line.
    Nothing is lost: the node's records stay for the others, who count it out once its
    heartbeat lapses, with a departure (``user_left``) for each connection."""
    async with RedisProcess(persistent_dir=tmp_path) as redis, \
            beating(redis.url, 2) as (stopping, staying):
        handed: list[Departure] = []
        staying.on_departures = keep(handed)
        for connection in ("s1", "s2", "s3"):
            await asyncio.wait_for(stopping.join(ANN, connection, USER, CLIENT), TIMEOUT)
        await asyncio.wait_for(staying.join(ANN, "t1", USER, CLIENT), TIMEOUT)

        stopping.closing()
        redis.kill()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(stopping.leave(ANN, "s1"), TIMEOUT)
        await redis.start()  # with everything it held
        for connection in ("s2", "s3"):
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(stopping.leave(ANN, connection), TIMEOUT)
        await asyncio.wait_for(stopping.leave_all(), TIMEOUT)
        assert await listed_in_redis(staying) == ["s1", "s2", "s3", "t1"]
        said = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
        assert said == ["Redis did not answer as this node stopped: the other nodes will "
                        "count its connections out within 20 s"]

        await staying.redis.delete(f"roomz:node:{stopping.node_id}")  # its heartbeat lapsed
        await asyncio.wait_for(staying.beat(), TIMEOUT)
        assert [d.remaining for d in handed] == [3, 2, 1]
        assert await listed_in_redis(staying) == ["t1"]


async def test_a_node_dead_before_its_first_beat_after_a_redis_restart_is_counted_out(
        redis: RedisProcess) -> None:
    """Redis restarts without its data, and two nodes count new connections before their
    next beats: the one that then dies is still counted out once its heartbeat lapses
    (its join made it known again), and the one that lives writes back at its beat what
    Redis lost (its join, which found it unknown, asks for that)."""
    async with beating(redis.url, 2) as (living, staying), \
            beating(redis.url, 1, node_timeout=0.3) as (dying,):
        await asyncio.wait_for(living.join(ANN, "l0", USER, CLIENT), TIMEOUT)
        redis.kill()
        await redis.start()  # empty
        assert await asyncio.wait_for(living.join(ANN, "l1", USER, CLIENT), TIMEOUT) == 2
        assert await asyncio.wait_for(dying.join(ANN, "d1", USER, CLIENT), TIMEOUT) == 3
        assert await listed_in_redis(staying) == ["d1", "l1"]  # no l0
        await asyncio.wait_for(living.beat(), TIMEOUT)

        async def counted_out() -> None:  # dying beats no more
            while "d1" in await listed_in_redis(staying):
                await asyncio.sleep(0.1)
                await staying.beat()
        await asyncio.wait_for(counted_out(), TIMEOUT)
        assert await asyncio.wait_for(staying.join(ANN, "s1", USER, CLIENT), TIMEOUT) == 3
        assert await listed_in_redis(staying) == ["l0", "l1", "s1"]


async def test_a_connection_record_no_node_wrote_is_left_out_with_a_warning(
        redis: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    """A record in a node's hash that is not one (a ``user`` object alone, as nodes kept
    before one record carried it and what ``who`` lists) is left out of ``who`` and of the
    dead node's departures, and the log says why; its other connections are listed and
    announced as ever."""
    async with beating(redis.url, 2) as (dead, alive):
        handed: list[Departure] = []
        alive.on_departures = keep(handed)
        await asyncio.wait_for(dead.join(ANN, "d1", USER, CLIENT), TIMEOUT)
        await dead.redis.hset(f"roomz:connections:{dead.node_id}", "d0", '{"email": "x"}')
        await dead.redis.hset(f"roomz:who:{ANN}", "d0", dead.node_id)

        listed = await asyncio.wait_for(alive.connections(ANN, []), TIMEOUT)
        assert [c.connection_id for c in listed] == ["d1"]
        await dead.redis.delete(f"roomz:node:{dead.node_id}")  # as if its heartbeat expired
        await asyncio.wait_for(alive.beat(), TIMEOUT)
        assert [(d.user, d.remaining) for d in handed] == [(USER, 0)]
        warned = {r.getMessage() for r in caplog.records if r.levelname == "WARNING"}
        assert warned == {"ignored a malformed connection record in Redis: not a "
                          """connection record: '{"email": "x"}'"""}
