"""Two nodes: each user's messages reach every connection in the order they were kept,
whatever happens to a node or to its subscription to the message bus, and a question whose
keeping may have failed is undone only if it was not kept. (Several of these were found by
a fresh-eyes review of the change.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.questions import question_payload
from roomz.server.question_rules import MAX_OPEN_PER_USER
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess

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


@dataclass
class CutOff:
    """Node 0, whose link to Redis can lose a reply (and then refuse it), and node 1;
    a reader of one user on node 1 and a sender on node 0, once Redis knows the scripts."""

    proxy: LostReplies
    zero: ServerProcess
    reader: Watch
    sender: AsyncClient


@contextlib.asynccontextmanager
async def cut_off_node(tmp_path: Path, make_client: Callable[..., AsyncClient],
                       **sender_options: Any) -> AsyncIterator[CutOff]:
    """The two nodes of :class:`CutOff`, warmed up (a first message heard)."""
    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        cut_off = f"redis://127.0.0.1:{await proxy.__aenter__()}"
        try:
            async with node_on(cut_off, tmp_path) as zero, \
                    node_on(redis.url, tmp_path) as one:
                session = await one.sign_in(EMAIL)
                reader = await _connected(make_client(one.url, session), "reader")
                sender = make_client(zero.url, session, **sender_options)
                await asyncio.wait_for(sender.connect(), TIMEOUT)
                await _heard(reader, await asyncio.wait_for(sender.send("warm-up"), TIMEOUT))
                yield CutOff(proxy, zero, reader, sender)
        finally:
            await proxy.__aexit__(None, None, None)


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
    which stayed up, never heard it. Keeping now publishes it, in one step; the sender is
    told the message may have gone (it was told "not sent")."""
    async with cut_off_node(tmp_path, make_client) as nodes:
        nodes.proxy.arm(b"kept as the node is cut off", then_refuse=True)
        answer = await asyncio.wait_for(nodes.sender.send("kept as the node is cut off"),
                                        TIMEOUT)
        assert nodes.proxy.dropped.is_set()
        # The node cannot know whether Redis kept it, and says so: "perhaps", not "not sent".
        assert answer == {"error": "Message perhaps not sent: the server lost touch with its "
                                   "history store as it kept it; try again shortly",
                          "code": 503, "maybe_sent": True}, answer
        await nodes.reader.events.wait_for(
            "message", lambda m: m["content"] == "kept as the node is cut off")
        assert nodes.reader.count("down") == 0  # heard live, not by a replay
        nodes.proxy.restore()


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


@pytest.mark.timeout(60)
async def test_a_stalled_subscription_is_noticed_and_its_users_catch_up(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0's subscription goes silent (a dead route: nothing arrives, nothing closes).
    Node 0's own users' messages come back to it by the bus alone, and nothing noticed the
    stall (redis-py's blocking read never runs its health check): the user's other
    connection on node 0 never saw them. Now a subscription silent for 2 s, its PING
    unanswered too, counts as broken, and the reader catches up."""
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
async def test_a_subscription_that_stalls_then_breaks_loses_nothing(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0's subscription stalls, then breaks 6 s later (as when Redis drops a
    subscriber whose output buffer stays over its limit). The reader's user had no message
    since node 0 started, so the catch-up used to look from 5 s before the break was
    noticed, after the message it missed: the reader kept its connection and lost it for
    good. Now it looks from when node 0 last heard everything, by Redis's clock."""
    async with RedisProcess() as redis, BusProxy(redis.port) as bus, \
            node_on(bus.url, tmp_path) as zero, node_on(redis.url, tmp_path) as one:
        session = await zero.sign_in(EMAIL)
        reader = await _connected(make_client(zero.url, session), "reader")
        sender = make_client(one.url, session)
        await asyncio.wait_for(sender.connect(), TIMEOUT)

        bus.hold()
        missed = await asyncio.wait_for(sender.send("sent while the bus stalled"), TIMEOUT)
        assert missed["status"] == "ok", missed
        await asyncio.sleep(6.5)  # longer than the 5 s the catch-up once looked back
        mark = len(zero.lines)
        bus.cut()
        await zero.wait_for_line("subscribed to the message bus", after=mark, timeout=10)
        after = await asyncio.wait_for(sender.send("after"), TIMEOUT)
        await reader.events.wait_for("message", lambda m: m["id"] == after["message_id"],
                                     timeout=TIMEOUT)

        heard = [m["content"] for m in reader.messages]
        assert heard == ["sent while the bus stalled", "after"], (
            heard, f"reconnects: {reader.count('down')}")


@pytest.mark.timeout(60)
async def test_a_question_refused_503_after_it_was_kept_can_still_be_answered(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Node 0 keeps a question and loses Redis before hearing back: the script has
    published it, so every connection shows it live, and the asker gets a 503. Node 0
    used to withdraw the question once Redis answered again, and a reader who answered the
    question on their screen was refused (404). Now node 0 looks, once Redis answers,
    whether the message was kept: it was, so the question stands and takes answers."""
    async with cut_off_node(tmp_path, make_client) as nodes:
        payload, _ = question_payload("Deploy?", ["yes", "no"], timeout=60,
                                      subject="marker-only-in-the-kept-message")
        nodes.proxy.arm(b"marker-only-in-the-kept-message", then_refuse=True)
        ack = await asyncio.wait_for(nodes.sender._call("message", payload), TIMEOUT)
        assert ack.get("code") == 503, ack
        question = await nodes.reader.events.wait_for(
            "message", lambda m: "question_data" in m, timeout=TIMEOUT)
        nodes.proxy.restore()
        # Node 0 would undo what it kept for later before its next question.
        later, _ = question_payload("Another?", ["a", "b"], timeout=60)
        assert (await asyncio.wait_for(nodes.sender._call("message", later), TIMEOUT)
                ).get("status") == "ok"
        answered = await asyncio.wait_for(nodes.reader.client.answer(question, "yes"), TIMEOUT)
        assert answered.get("status") == "ok", (
            "the question every connection was shown cannot be answered", answered)


@pytest.mark.timeout(90)
async def test_a_question_whose_message_never_reached_redis_is_undone(
        tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """The other side: the command keeping a question's message is lost on its way to
    Redis. The asker gets a 503; once Redis answers, the node finds the message was not
    kept and undoes the question, which then counts for nothing among the open ones."""
    async with cut_off_node(tmp_path, make_client) as nodes:
        payload, _ = question_payload("Deploy?", ["yes", "no"], timeout=60,
                                      subject="marker-of-a-lost-command")
        mark = len(nodes.zero.lines)
        nodes.proxy.arm(b"marker-of-a-lost-command", then_refuse=True, swallow=True)
        ack = await asyncio.wait_for(nodes.sender._call("message", payload), TIMEOUT)
        assert ack.get("code") == 503, ack
        nodes.proxy.restore()
        await nodes.zero.wait_for_line("was not kept is undone", after=mark, timeout=20)
        for number in range(MAX_OPEN_PER_USER):
            more, _ = question_payload(f"Open {number}?", ["a", "b"], timeout=60)
            answer = await asyncio.wait_for(nodes.sender._call("message", more), TIMEOUT)
            assert answer.get("status") == "ok", (number, answer)
