"""Found by a review (s27): holes in the delivery of kept messages by the bus alone, each
mended since."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roomz import AsyncClient
from tests.nodes.redis_proc import RedisProcess

from .helpers import TIMEOUT, Watch, node_on
from .proxy import BusProxy

EMAIL = "noor@example.com"


async def _connected(client: AsyncClient, name: str) -> Watch:
    watch = Watch(name, client)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    return watch


@pytest.mark.timeout(60)
async def test_a_stalled_subscription_hides_a_nodes_own_messages_from_its_own_users(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0's subscription goes silent (a dead route: nothing arrives, nothing closes).
    Before the change node 0 showed its own users' messages at once; now they come only by
    the bus, which nothing notices is stalled: each send waits out 1 s and is
    acknowledged "ok", and the user's other connection on the same node never sees it."""
    async with RedisProcess() as redis, BusProxy(redis.port) as bus, \
            node_on(bus.url, tmp_path) as zero:
        session = await zero.sign_in(EMAIL)
        reader = await _connected(make_client(zero.url, session), "reader")
        sender = make_client(zero.url, session)
        await asyncio.wait_for(sender.connect(), TIMEOUT)

        bus.hold()  # stays held: a silent subscription, never cut
        started = time.monotonic()
        ack = await asyncio.wait_for(sender.send("sent on node 0, to node 0"), TIMEOUT)
        took = time.monotonic() - started
        assert ack["status"] == "ok", ack
        await reader.events.wait_for("message", lambda m: m["id"] == ack["message_id"],
                                     timeout=8)
        assert took < 1.5, f"the acknowledgement took {took:.2f} s"  # waited out 1 s


@pytest.mark.timeout(60)
async def test_a_subscription_that_stalls_then_breaks_loses_a_message_for_good(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0's subscription stalls (Redis keeps writing to it; a slow or dead link), then
    breaks 6 s later (Redis drops a subscriber whose output buffer stays over its limit).
    The reader's user had no message since node 0 started, so BusGaps looks from
    ``lost_at - 5 s`` (the time the break was noticed), after the message it missed: the
    reader keeps its connection, hears the next message, and its cursor moves past the
    lost one, so no later resume brings it back."""
    async with RedisProcess() as redis, BusProxy(redis.port) as bus, \
            node_on(bus.url, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
        session = await zero.sign_in(EMAIL)
        reader = await _connected(make_client(zero.url, session), "reader")
        sender = make_client(one.url, session)
        await asyncio.wait_for(sender.connect(), TIMEOUT)

        bus.hold()
        missed = await asyncio.wait_for(sender.send("sent while the bus stalled"), TIMEOUT)
        assert missed["status"] == "ok", missed
        await asyncio.sleep(6.5)  # the stall lasts longer than bus_gaps.SLACK_SECONDS
        mark = len(zero.lines)
        bus.cut()
        await zero.wait_for_line("subscribed to the message bus", after=mark, timeout=10)
        after = await asyncio.wait_for(sender.send("after"), TIMEOUT)
        await reader.events.wait_for("message", lambda m: m["id"] == after["message_id"],
                                     timeout=TIMEOUT)

        heard = [m["content"] for m in reader.messages]
        assert heard == ["sent while the bus stalled", "after"], (
            heard, f"reconnects: {reader.count('down')}")


@pytest.mark.timeout(120)
async def test_a_redis_restart_keeps_every_readers_cursors_growing(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Probe of the ordering claim: Redis (append-only) SIGKILLed and restarted while
    clients on two nodes send; every connection hears the user's messages with growing
    cursors, nothing acknowledged missing, nothing twice."""
    from .test_nothing_missed import assert_nothing_missed, connected, traffic_through

    async with RedisProcess(persistent_dir=tmp_path) as redis, \
            node_on(redis.url, tmp_path) as one, node_on(redis.url, tmp_path) as two:
        session = await one.sign_in("dave@example.com")
        clients = {f"n{i % 2}c{i}": make_client((one, two)[i % 2].url, session)
                   for i in range(4)}
        watches = await connected(clients)

        async def restart_redis() -> None:
            redis.kill()
            await asyncio.sleep(1.0)
            await redis.start()

        log = await traffic_through(restart_redis, clients, pace=0.005)
        await assert_nothing_missed(log, watches)
        for watch in watches:
            cursors = [tuple(map(int, m["cursor"].split("-"))) for m in watch.messages]
            assert cursors == sorted(cursors), watch.name


@pytest.mark.timeout(60)
async def test_a_question_refused_503_after_it_was_kept_can_still_be_answered(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0 keeps a question and loses Redis before hearing back: the script has
    published it, so every connection shows it live, and the asker gets a 503. Node 0
    used to withdraw the question once Redis answered again, and a reader who answered the
    question on their screen was refused (404). Now node 0 looks, once Redis answers,
    whether the message was kept: it was, so the question stands and takes answers."""
    from roomz.questions import question_payload

    from .proxy import LostReplies

    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        cut_off = f"redis://127.0.0.1:{await proxy.__aenter__()}"
        async with node_on(cut_off, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
            session = await one.sign_in(EMAIL)
            reader = await _connected(make_client(one.url, session), "reader")
            asker = make_client(zero.url, session)
            await asyncio.wait_for(asker.connect(), TIMEOUT)
            warm = await asyncio.wait_for(asker.send("warm-up: Redis has the script"), TIMEOUT)
            await reader.events.wait_for("message", lambda m: m["id"] == warm["message_id"],
                                         timeout=TIMEOUT)

            payload, _ = question_payload("Deploy?", ["yes", "no"], timeout=60,
                                          subject="marker-only-in-the-kept-message")
            proxy.arm(b"marker-only-in-the-kept-message", then_refuse=True)
            ack = await asyncio.wait_for(asker._call("message", payload), TIMEOUT)
            assert ack.get("code") == 503, ack
            question = await reader.events.wait_for(
                "message", lambda m: "question_data" in m, timeout=TIMEOUT)
            proxy.restore()
            # Node 0 undoes what it kept for later before its next question (or its sweep).
            later, _ = question_payload("Another?", ["a", "b"], timeout=60)
            assert (await asyncio.wait_for(asker._call("message", later), TIMEOUT)
                    ).get("status") == "ok"
            answered = await asyncio.wait_for(reader.client.answer(question, "yes"), TIMEOUT)
            assert answered.get("status") == "ok", (
                "the question every connection was shown cannot be answered", answered)
        await proxy.__aexit__(None, None, None)


@pytest.mark.timeout(90)
async def test_a_question_whose_message_never_reached_redis_is_undone(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """The other side: the command keeping a question's message is lost on its way to
    Redis. The asker gets a 503; once Redis answers, the node finds the message was not
    kept and undoes the question, which then counts for nothing among the open ones."""
    from roomz.questions import question_payload
    from roomz.server.question_rules import MAX_OPEN_PER_USER

    from .proxy import LostReplies

    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        cut_off = f"redis://127.0.0.1:{await proxy.__aenter__()}"
        async with node_on(cut_off, tmp_path) as zero:
            session = await zero.sign_in(EMAIL)
            asker = make_client(zero.url, session)
            await asyncio.wait_for(asker.connect(), TIMEOUT)
            await asyncio.wait_for(asker.send("warm-up: Redis has the script"), TIMEOUT)

            payload, _ = question_payload("Deploy?", ["yes", "no"], timeout=60,
                                          subject="marker-of-a-lost-command")
            mark = len(zero.lines)
            proxy.arm(b"marker-of-a-lost-command", then_refuse=True, swallow=True)
            ack = await asyncio.wait_for(asker._call("message", payload), TIMEOUT)
            assert ack.get("code") == 503, ack
            proxy.restore()
            await zero.wait_for_line("was not kept is undone", after=mark, timeout=20)
            for number in range(MAX_OPEN_PER_USER):
                more, _ = question_payload(f"Open {number}?", ["a", "b"], timeout=60)
                answer = await asyncio.wait_for(asker._call("message", more), TIMEOUT)
                assert answer.get("status") == "ok", (number, answer)
        await proxy.__aexit__(None, None, None)
