"""Several nodes' questions (``RedisQuestions``) on a real Redis, below the wire: the bound
on the closed questions remembered, and a change undone while Redis was away. (Over the
wire, between nodes: tests/nodes/test_questions_across_nodes.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from roomz.server import redis_state
from roomz.server.question_store import REMEMBERED_CLOSED
from roomz.server.redis_questions import RedisQuestions
from roomz.server.rich_messages import Refused
from roomz.server.unavailable import StoreUnavailable
from tests.faults.proxy import LostReplies
from tests.nodes.redis_proc import RedisProcess

from .test_question_store import ALICE, ASKER, DATA, POLL, Delivered, answer


@asynccontextmanager
async def on_redis(persistent_dir: Path | None = None) -> AsyncIterator[
        tuple[RedisProcess, aioredis.Redis]]:
    """A fresh Redis (keeping what it is told across a restart, given ``persistent_dir``)
    and a client of it, as a node has."""
    async with RedisProcess(persistent_dir) as redis:
        connected = redis_state.connect(redis.url)
        try:
            yield redis, connected
        finally:
            await connected.aclose()


async def test_closed_questions_are_remembered_up_to_a_bound() -> None:
    """As on one node, the newest 4096 closed questions are remembered: a late answer to
    one of them hears 410; the oldest beyond is forgotten (404), and nothing else grows."""
    async with on_redis() as (_, redis):
        questions = RedisQuestions(redis, Delivered(), sweep_seconds=60)
        await questions.open()
        try:
            for number in range(REMEMBERED_CLOSED + 1):
                await questions.ask(f"q{number}", ALICE, ASKER, "connection-1", DATA)
                await questions.answer(ALICE, "connection-2", answer(f"q{number}"))
            with pytest.raises(Refused, match="Unknown question q0") as forgotten:
                await questions.answer(ALICE, "connection-2", answer("q0"))
            assert forgotten.value.answer["code"] == 404
            for remembered in ("q1", f"q{REMEMBERED_CLOSED}"):
                with pytest.raises(Refused, match=f"Question {remembered} is closed") as closed:
                    await questions.answer(ALICE, "connection-2", answer(remembered))
                assert closed.value.answer["code"] == 410
            keys = "roomz:questions:"
            assert await redis.hlen(f"{keys}closed") == REMEMBERED_CLOSED
            assert await redis.zcard(f"{keys}closed-order") == REMEMBERED_CLOSED
            assert (await redis.hlen(f"{keys}open"), await redis.zcard(f"{keys}deadlines"),
                    await redis.hlen(f"{keys}per-user")) == (0, 0, 0)
        finally:
            await questions.close()


async def test_a_change_undone_while_redis_is_away_is_undone_when_it_is_back(
        tmp_path: Path) -> None:
    """A question is asked, then Redis goes away before its message is kept: withdrawing
    it fails for now, and is done once Redis answers again (the node sweeps every 0.1 s
    here), so the question is unknown, as if never asked."""
    async with on_redis(tmp_path) as (process, redis):
        questions = RedisQuestions(redis, Delivered(), sweep_seconds=0.1)
        await questions.open()
        try:
            withdraw = await questions.ask("q1", ALICE, ASKER, "connection-1", DATA)
            process.kill()
            await withdraw()  # kept for later: no error, the message is refused all the same
            with pytest.raises(StoreUnavailable):
                await questions.answer(ALICE, "connection-2", answer("q1"))
            await process.start()

            async def withdrawn() -> None:
                while await redis.hexists("roomz:questions:open", "q1"):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(withdrawn(), 10)
            with pytest.raises(Refused, match="Unknown question q1"):
                await questions.answer(ALICE, "connection-2", answer("q1"))
        finally:
            await questions.close()


async def test_an_answer_after_the_deadline_hears_it_timed_out_before_any_sweep() -> None:
    """The deadline has passed and no node has swept yet (its node died, the others sweep
    at their next beat): an answer hears 410 "it timed out", as on one node, and the
    timeout message follows, once, from the node that sweeps."""
    async with on_redis() as (_, redis):
        asked_through = RedisQuestions(redis, Delivered(), sweep_seconds=60)  # not sweeping
        await asked_through.ask("q1", ALICE, ASKER, "connection-1", DATA)
        await redis.zadd("roomz:questions:deadlines", {"q1": 0})  # due long ago
        delivered = Delivered()
        other = RedisQuestions(redis, delivered, sweep_seconds=60)
        with pytest.raises(Refused, match="Question q1 is closed: it timed out"):
            await other.answer(ALICE, "connection-2", answer("q1"))
        await other.open()
        try:
            await asyncio.wait_for(delivered.arrived.wait(), 5)
            with pytest.raises(Refused, match="Question q1 is closed: it timed out"):
                await other.answer(ALICE, "connection-2", answer("q1"))
        finally:
            await other.close()
        (timeout,) = delivered.messages
        assert (timeout["answer_to"], timeout["answers"], timeout["user"]) == ("q1", ["2"],
                                                                               ASKER)


async def test_a_retry_through_the_same_node_finds_its_answer_undone(tmp_path: Path) -> None:
    """Answers are taken, then Redis goes away before their messages are kept: the person
    is told to try again shortly. Redis is back, and the retries, through the same node
    (a connection stays on its node), are taken, though that node's sweep (every 60 s
    here) has not come round yet: the undos kept for later are done first; else the
    question would be 410 "answered already" and the poll 409, for answers nobody saw."""
    async with on_redis(tmp_path) as (process, redis):
        questions = RedisQuestions(redis, Delivered(), sweep_seconds=60)
        await questions.open()
        try:
            await questions.ask("q1", ALICE, ASKER, "connection-1", DATA)
            await questions.ask("p1", ALICE, ASKER, "connection-1", POLL)
            take_back = await questions.answer(ALICE, "connection-2", answer("q1"))
            take_back_poll = await questions.answer(ALICE, "connection-2", answer("p1"))
            process.kill()
            await take_back()  # kept for later: the message is refused all the same
            await take_back_poll()
            await process.start()
            await questions.answer(ALICE, "connection-2", answer("q1"))
            await questions.answer(ALICE, "connection-2", answer("p1"))
        finally:
            await questions.close()


async def test_a_change_undone_while_redis_was_away_is_undone_as_the_node_stops(
        tmp_path: Path) -> None:
    """A question is asked, Redis goes away before its message is kept, and comes back;
    the node stops before its sweep (every 60 s here) has come round: stopping withdraws
    the question all the same, so it neither stays open nor times out later."""
    async with on_redis(tmp_path) as (process, redis):
        questions = RedisQuestions(redis, Delivered(), sweep_seconds=60)
        await questions.open()
        withdraw = await questions.ask("q1", ALICE, ASKER, "connection-1", DATA)
        process.kill()
        await withdraw()  # kept for later
        await process.start()
        await questions.close()
        assert not await redis.hexists("roomz:questions:open", "q1")
        assert await redis.hlen("roomz:questions:per-user") == 0


async def test_a_deadline_without_its_question_is_dropped_by_the_sweep() -> None:
    """A deadline whose question Redis no longer holds (its keys evicted apart under an
    ``allkeys`` eviction policy, or deleted by hand) is dropped by the first sweep that
    finds it due, sending nothing, instead of being found due again at once, forever, a
    busy loop on every node; questions then time out as before."""
    async with on_redis() as (_, redis):
        await redis.zadd("roomz:questions:deadlines", {"gone": 0})
        delivered = Delivered()
        questions = RedisQuestions(redis, delivered, sweep_seconds=60)
        await questions.open()
        try:
            async def dropped() -> None:
                while await redis.zscore("roomz:questions:deadlines", "gone") is not None:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(dropped(), 5)
            await questions.ask("q1", ALICE, ASKER, "connection-1", {**DATA, "timeout": 0.2})
            await asyncio.wait_for(delivered.arrived.wait(), 5)
            assert [m["answer_to"] for m in delivered.messages] == ["q1"]
        finally:
            await questions.close()



async def test_a_change_whose_reply_was_lost_is_not_made_twice() -> None:
    """The link to Redis is cut after Redis ran a change and before the node heard its
    reply; redis-py sends the change again on a new connection. The run sent again gets
    the first run's reply: the person hears their answer taken (not 410 "answered
    already", their answer lost), and a timeout claimed is sent (not lost)."""
    async with on_redis() as (process, direct):
        proxy = LostReplies(process.port)
        async with proxy as port:
            redis = redis_state.connect(f"redis://127.0.0.1:{port}/0")
            delivered = Delivered()
            questions = RedisQuestions(redis, delivered, sweep_seconds=60)
            await questions.open()
            try:
                # Redis runs a script it has seen before: one answer, one timeout.
                for question in ("answered", "q1"):
                    await questions.ask(question, ALICE, ASKER, "connection-1", DATA)
                await questions.answer(ALICE, "connection-3", answer("answered"))
                await questions.ask("timed-out", ALICE, ASKER, "connection-1",
                                    {**DATA, "timeout": 0.1})
                await asyncio.wait_for(delivered.arrived.wait(), 10)
                delivered.arrived.clear()

                proxy.arm(b"connection-2")
                await asyncio.wait_for(
                    questions.answer(ALICE, "connection-2", answer("q1")), 10)
                assert proxy.dropped.is_set()
                assert await direct.hget("roomz:questions:closed", "q1") == \
                    f"{ALICE} answered already"

                proxy.arm(b"it timed out")  # the sweep's claim of a question due
                await questions.ask("t1", ALICE, ASKER, "connection-1",
                                    {**DATA, "timeout": 0.2})
                await asyncio.wait_for(delivered.arrived.wait(), 10)
                assert proxy.dropped.is_set()
                assert [m["answer_to"] for m in delivered.messages] == ["timed-out", "t1"]
            finally:
                await questions.close()
                await redis.aclose()
