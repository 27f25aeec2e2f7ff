"""Two nodes: each user's messages reach every connection in the order they were kept,
whatever happens to a node or to its subscription to the message bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from roomz import AsyncClient
from tests.nodes.redis_proc import RedisProcess

from .helpers import TIMEOUT, Watch, node_on
from .proxy import BusProxy, LostReplies

EMAIL = "noor@example.com"


async def _connected(client: AsyncClient, name: str) -> Watch:
    watch = Watch(name, client)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    return watch


async def _heard(watch: Watch, ack: dict, timeout: float = TIMEOUT) -> None:  # type: ignore[type-arg]
    assert ack["status"] == "ok", ack
    await watch.events.wait_for("message", lambda m: m["id"] == ack["message_id"],
                                timeout=timeout)


@pytest.mark.timeout(60)
async def test_a_reader_hears_each_users_messages_in_the_order_they_were_kept(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0's subscription lags: a message kept on node 1 is on its way to node 0 when
    node 0 keeps a later one. Node 0 used to show its own at once, before the earlier
    one; a reader that left in between resumed after its own, and lost the other."""
    async with RedisProcess() as redis, BusProxy(redis.port) as bus, \
            node_on(bus.url, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
        session = await zero.sign_in(EMAIL)
        reader = await _connected(make_client(zero.url, session), "reader")
        # Node 0 acknowledges its own message once it heard it back, or after a second.
        here = make_client(zero.url, session, connection_timeout=TIMEOUT)
        there = make_client(one.url, session)
        await asyncio.wait_for(asyncio.gather(here.connect(), there.connect()), TIMEOUT)
        await _heard(reader, await asyncio.wait_for(there.send("warm-up"), TIMEOUT))

        bus.hold()
        first = await asyncio.wait_for(there.send("first, on node 1"), TIMEOUT)
        second = await asyncio.wait_for(here.send("second, on node 0"), TIMEOUT)
        assert (first["status"], second["status"]) == ("ok", "ok"), (first, second)
        bus.release()
        await _heard(reader, second)

        heard = reader.messages
        assert [m["content"] for m in heard] == [
            "warm-up", "first, on node 1", "second, on node 0"]
        cursors = [tuple(map(int, m["cursor"].split("-"))) for m in heard]  # Redis entry ids
        assert cursors == sorted(cursors), cursors
        assert reader.count("down") == 0


@pytest.mark.timeout(60)
async def test_a_message_kept_as_its_node_is_cut_off_still_reaches_the_other_node(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0 keeps a message and loses Redis before it hears back (as if it died there).
    It used to publish a message only after keeping it: the other node's connections,
    which stayed up, never heard it. Keeping now publishes it, in one step."""
    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        cut_off = f"redis://127.0.0.1:{await proxy.__aenter__()}"
        async with node_on(cut_off, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
            session = await one.sign_in(EMAIL)
            reader = await _connected(make_client(one.url, session), "reader")
            sender = make_client(zero.url, session)
            await asyncio.wait_for(sender.connect(), TIMEOUT)
            await _heard(reader, await asyncio.wait_for(sender.send("warm-up"), TIMEOUT))

            proxy.arm(b"kept as the node is cut off", then_refuse=True)
            answer = await asyncio.wait_for(sender.send("kept as the node is cut off"), TIMEOUT)
            assert proxy.dropped.is_set()
            assert answer.get("code") == 503, answer  # the sender cannot know: "try again"
            await reader.events.wait_for(
                "message", lambda m: m["content"] == "kept as the node is cut off")
            assert reader.count("down") == 0  # heard live, not by a replay
            proxy.restore()
        await proxy.__aexit__(None, None, None)


@pytest.mark.timeout(90)
async def test_a_node_whose_subscription_broke_makes_who_missed_messages_catch_up(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Redis drops node 0's subscription (Redis itself stays up) while a message of
    node 1's is on its way to it. Node 0's connections stayed up and would never have
    heard it. Now node 0, listening again, closes the connections of the users who missed
    something, and they catch up; the others keep their connections."""
    async with RedisProcess() as redis, BusProxy(redis.port) as bus, \
            node_on(bus.url, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
        session = await zero.sign_in(EMAIL)
        reader = await _connected(make_client(zero.url, session), "reader")
        other_session = await zero.sign_in("omar@example.com")
        bystander = await _connected(make_client(zero.url, other_session), "bystander")
        sender = make_client(one.url, session)
        await asyncio.wait_for(sender.connect(), TIMEOUT)
        await _heard(reader, await asyncio.wait_for(sender.send("warm-up"), TIMEOUT))

        mark = len(zero.lines)
        bus.hold()
        missed = await asyncio.wait_for(sender.send("sent as the bus broke"), TIMEOUT)
        bus.cut()
        await zero.wait_for_line("may have missed messages", after=mark, timeout=10)
        await _heard(reader, missed, timeout=10)
        after = await asyncio.wait_for(sender.send("after"), TIMEOUT)
        await _heard(reader, after)

        assert [m["content"] for m in reader.messages] == [
            "warm-up", "sent as the bus broke", "after"]
        assert reader.duplicates() == {}
        assert reader.count("down") == 1  # it caught up by reconnecting
        assert bystander.count("down") == 0  # it missed nothing: left alone
