"""A message sent the moment Redis is back, before the other node listens again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import socketio

from roomz import AsyncClient
from roomz.server.history import Window
from roomz.server.redis_history import RedisHistory
from roomz.server.redis_state import RedisFanOutManager, connect
from tests.nodes.redis_proc import RedisProcess

from .helpers import TIMEOUT, Watch, node_on


@pytest.mark.timeout(60)
async def test_a_message_sent_as_redis_returns_reaches_the_other_node(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """The soak found it (two nodes, seed 20261202): Redis restarted within a second, and a
    message sent on node 1 right after was acknowledged, shown on node 1, and never
    reached node 0's connections, which stayed up (so no replay brought it later). Node 1
    had published it while node 0 was still resubscribing to the message bus."""
    async with RedisProcess(persistent_dir=tmp_path) as redis, \
            node_on(redis.url, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
        session = await zero.sign_in("hana@example.com")
        sender = make_client(one.url, session)
        reader = make_client(zero.url, session)
        watch = Watch("reader", reader)
        await asyncio.wait_for(sender.connect(), TIMEOUT)
        await asyncio.wait_for(reader.connect(), TIMEOUT)
        before = await asyncio.wait_for(sender.send("before"), TIMEOUT)
        await watch.events.wait_for("message", lambda m: m["id"] == before["message_id"])

        mark = len(zero.lines)
        redis.kill()
        await zero.wait_for_line("message bus lost", after=mark)
        await redis.start()
        sent = await asyncio.wait_for(sender.send("as Redis returns"), TIMEOUT)
        assert sent["status"] == "ok", sent
        await zero.wait_for_line("subscribed to the message bus", after=mark)
        after = await asyncio.wait_for(sender.send("after"), 10)
        await watch.events.wait_for("message", lambda m: m["id"] == after["message_id"],
                                    timeout=10)
        assert [m["content"] for m in watch.messages] == [
            "before", "as Redis returns", "after"]
        assert watch.count("down") == 0  # nothing came by a replay


@pytest.mark.timeout(30)
async def test_a_message_held_up_as_redis_returns_takes_its_place_after_the_wait() -> None:
    """The soak found it (two nodes, seed 14): a node that waits for the other nodes to
    listen again used to wait between keeping a message and publishing it. A message kept
    meanwhile on another node went out first, yet had a later place in the history: a
    reader that saw it and left at once resumed past the one held up, and lost it. The
    wait now comes before the message takes its place."""
    async with RedisProcess() as redis_proc:
        redis = connect(redis_proc.url)
        buses = [RedisFanOutManager(redis_proc.url, publisher=redis) for _ in range(2)]
        for bus in buses:
            socketio.AsyncServer(client_manager=bus)
            assert await bus.start(TIMEOUT)
        window = Window(1000, 3600.0)
        held_up, other = (RedisHistory(redis, window, bus=bus) for bus in buses)
        try:
            await buses[0].emit("noop", {}, namespace="/", room="nobody")  # two listen
            await buses[1].stop(TIMEOUT)  # and one no longer does, as while resubscribing
            buses[0].unreachable()  # its own subscription broke, say
            message = {"id": "m", "content": "x"}
            waiting = asyncio.create_task(held_up.keep("ida@example.com", dict(message)))
            await asyncio.sleep(0.3)
            overtaking = await other.keep("ida@example.com", dict(message))
            kept = await asyncio.wait_for(waiting, 10)
            assert other.order(overtaking) < other.order(kept), (overtaking, kept)
        finally:
            await buses[0].stop(TIMEOUT)
            await redis.aclose()
