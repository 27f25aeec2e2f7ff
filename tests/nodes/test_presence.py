"""``RedisPresence``: connection counts of one user on several nodes, through a Redis outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from roomz.server.redis_state import RedisPresence, connect
from roomz.server.unavailable import StoreUnavailable

from .redis_proc import RedisProcess

TIMEOUT = 5.0


@pytest.fixture
async def nodes(redis: RedisProcess) -> AsyncIterator[tuple[RedisPresence, RedisPresence]]:
    """The presence of two nodes sharing ``redis``, each with its own client."""
    one, two = connect(redis.url), connect(redis.url)
    yield RedisPresence(one), RedisPresence(two)
    await one.aclose()
    await two.aclose()


async def test_joins_and_leaves_on_two_nodes_add_up(
        nodes: tuple[RedisPresence, RedisPresence]) -> None:
    """Each call answers the user's total on all nodes, counting its own change."""
    a, b = nodes
    steps = [a.join, b.join, a.join, b.leave, a.leave, a.leave]
    totals = [await asyncio.wait_for(step("ann@example.com"), TIMEOUT) for step in steps]
    assert totals == [1, 2, 3, 2, 1, 0]
    assert await asyncio.wait_for(b.join("bob@example.com"), TIMEOUT) == 1


async def test_a_join_during_an_outage_fails_and_the_counts_come_back(
        nodes: tuple[RedisPresence, RedisPresence], redis: RedisProcess) -> None:
    """Redis down: join raises StoreUnavailable and counts nothing; the next beat after
    Redis is back writes this node's counts again, so the other node sees them."""
    a, b = nodes
    assert await asyncio.wait_for(a.join("ann@example.com"), TIMEOUT) == 1
    redis.kill()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(a.join("ann@example.com"), TIMEOUT)
    assert a.counts == {"ann@example.com": 1}
    await redis.start()  # empty: the restart lost every count
    await asyncio.wait_for(a.beat(), TIMEOUT)
    assert await asyncio.wait_for(b.join("ann@example.com"), TIMEOUT) == 2


async def test_a_beat_after_an_unnoticed_redis_restart_writes_the_counts_back(
        nodes: tuple[RedisPresence, RedisPresence], redis: RedisProcess) -> None:
    """Redis restarts between two beats and nothing failed meanwhile: the next beat still
    sees that our counts are gone and writes them back."""
    a, b = nodes
    await asyncio.wait_for(a.beat(), TIMEOUT)
    assert await asyncio.wait_for(a.join("ann@example.com"), TIMEOUT) == 1
    redis.kill()
    await redis.start()
    await asyncio.wait_for(a.beat(), TIMEOUT)
    assert await asyncio.wait_for(b.join("ann@example.com"), TIMEOUT) == 2
