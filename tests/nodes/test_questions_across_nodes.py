"""Questions on several nodes (docs/protocol.md 3.8 and section 5): asked through one node,
answered through another, refused as on one node, timed out once (also when the node it
was asked through dies), and refused whole while Redis cannot record them. Real
``roomz-server`` processes on one real Redis; bare Socket.IO clients, which show every
event as it arrives (``AsyncClient`` drops a message id it has seen)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from roomz.message import Message
from roomz.server.question_rules import MAX_OPEN_PER_USER, TIMEOUT_IDS
from tests.events import Events
from tests.server.helpers import ChatClient, assert_ok_ack, close_client, open_client, signed_in
from tests.server.proc import ServerProcess
from tests.server.test_questions_restart import answering
from tests.server.test_rich_messages import QUESTION, asking
from tests.waiting import wait_until as until

from .conftest import SECRET
from .helpers import a_client_on_each
from .redis_proc import RedisProcess
from .test_redis_outage import eventually

ALICE = "alice@example.com"
#: A node timeout of 3 s: each node beats, and sweeps the questions' deadlines, every second.
FAST = {"ROOMZ_NODE_TIMEOUT": "3"}
#: How late a question times out, at worst, when the node it was asked through has died:
#: one sweep of another node (the node timeout / 3).
WORST_LATENESS = 1.0
#: What a loaded test machine may add to any wait (never part of what is asserted).
SLACK = 10.0
NOT_RECORDED = {"error": "Message not sent: the server cannot record its question or answer "
                         "just now; try again shortly", "code": 503}
#: Redis refused the write (an error reply): nothing was kept, and the answer says so.
NOT_KEPT = {"error": "Message not sent: the server cannot keep it in its history just now; "
                     "try again shortly", "code": 503}


def timed_out(asked: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Matches the timeout message of the question whose acknowledgement is ``asked``."""
    return lambda d: d.get("answer_to") == asked["message_id"] and d.get("timed_out") is True


def timeouts(client: ChatClient, asked: dict[str, Any]) -> list[dict[str, Any]]:
    """Every timeout message of ``asked``'s question that ``client`` received."""
    return [d for d in client.named("message") if timed_out(asked)(d)]


async def kept(client: ChatClient) -> list[dict[str, Any]]:
    """The user's history, oldest first (the last 100 messages)."""
    answer = await client.call("history", {"limit": 100})
    assert answer["status"] == "ok", answer
    return list(answer["messages"])


async def test_a_question_asked_on_one_node_is_answered_on_the_other(
        node: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """ask() through node 1, answered through node 2 by another connection of the user:
    ask() returns that answer, and both connections see the answer message. Both nodes
    name questions in ``authenticated``."""
    async with node() as one, node() as two:
        asker, person = await a_client_on_each(one, two, ALICE, tmp_path / "s.json")
        by_asker, by_person = Events(asker), Events(person)
        acks: list[dict[str, Any]] = []

        async def answer_it(data: dict[str, Any]) -> None:
            if Message(data).question is not None:
                acks.append(await person.answer(data, "sushi"))

        person.on("message", answer_it)
        await asker.connect()
        await person.connect()
        try:
            assert asker.supports("questions") and person.supports("questions")
            answer = await asyncio.wait_for(
                asker.ask("Lunch?", ["pizza", "sushi"], timeout=60), SLACK)
            assert (answer.choice, answer.ids, answer.timed_out) == ("sushi", ("2",), False)
            assert answer.event is not None
            await until(lambda: bool(acks))  # the answerer's acknowledgement may come later
            (ack,) = acks
            assert answer.event["id"] == ack["message_id"]
            for seen in (by_asker, by_person):
                heard = await seen.wait_for("message", lambda d: d["id"] == ack["message_id"])
                assert heard["answers"] == ["2"]
        finally:
            await asker.disconnect()
            await person.disconnect()


async def test_two_answers_racing_from_two_nodes_one_is_taken(
        node: Callable[..., ServerProcess]) -> None:
    """Both connections answer a plain question at once, through different nodes: one
    answer is taken, the other hears 410, and the history holds one answer (ten rounds). A
    poll takes one answer from each connection, through either node; a second is 409."""
    async with node() as one, node() as two:
        token = await one.sign_in(ALICE)
        async with signed_in(one.url, token) as a, signed_in(two.url, token) as b:
            questions = []
            for _ in range(10):
                asked = await a.call("message", asking())
                assert_ok_ack(asked)
                await b.wait_for("message", lambda d, q=asked: d["id"] == q["message_id"])
                acks = await asyncio.gather(a.call("message", answering(asked, "1")),
                                            b.call("message", answering(asked, "2")))
                closed = {"error": f"Question {asked['message_id']} is closed: answered "
                                   "already", "code": 410}
                assert sorted(ack.get("status", "") for ack in acks) == ["", "ok"], acks
                assert closed in acks, acks
                questions.append(asked["message_id"])
            answers = [m["answer_to"] for m in await kept(a) if m.get("answer_to")]
            assert answers == questions  # one answer each

            poll = await a.call("message", asking({**QUESTION, "keep_open": True}))
            acks = await asyncio.gather(a.call("message", answering(poll, "1")),
                                        b.call("message", answering(poll, "2")))
            for ack in acks:
                assert_ok_ack(ack)
            twice = {"error": f"You answered question {poll['message_id']} already",
                     "code": 409}
            assert await b.call("message", answering(poll, "1")) == twice
            assert await a.call("message", answering(poll, "2")) == twice


async def test_refusals_are_those_of_one_node_and_count_every_node(
        node: Callable[..., ServerProcess]) -> None:
    """An answer that does not fit is 400, another user's or an unknown question 404; open
    questions count on every node together: the 51st, whichever node, is 429."""
    async with node() as one, node() as two:
        token = await one.sign_in(ALICE)
        bob_token = await two.sign_in("bob@example.com")
        async with signed_in(one.url, token) as a, signed_in(two.url, token) as b, \
                signed_in(two.url, bob_token) as bob:
            asked = await a.call("message", asking())
            assert await b.call("message", answering(asked, "9")) == {
                "error": f"Invalid 'answers': '9' is not an answer to question "
                         f"{asked['message_id']}", "code": 400}
            unknown = {"error": f"Unknown question {asked['message_id']}: no question of "
                                "yours has that id", "code": 404}
            assert await bob.call("message", answering(asked)) == unknown
            for number in range(MAX_OPEN_PER_USER - 1):  # half through each node
                assert_ok_ack(await (a, b)[number % 2].call("message", asking()))
            too_many = {"error": f"Too many open questions: at most {MAX_OPEN_PER_USER}; wait "
                                 "for answers or timeouts", "code": 429}
            assert await a.call("message", asking()) == too_many
            assert await b.call("message", asking()) == too_many
            assert_ok_ack(await b.call("message", answering(asked)))  # one closes: room again
            assert_ok_ack(await b.call("message", asking()))


async def test_a_timeout_reaches_every_node_once_and_is_kept(
        node: Callable[..., ServerProcess]) -> None:
    """Nobody answers: each connection, on either node, gets the timeout message once, with
    the id made from the question's; it is in the history, a connection that comes back
    with an earlier cursor gets it, and a late answer hears 410 "it timed out"."""
    async with node(**FAST) as one, node(**FAST) as two:
        token = await one.sign_in(ALICE)
        async with signed_in(one.url, token) as a, signed_in(two.url, token) as b:
            asked = await a.call("message", asking({**QUESTION, "timeout": 2}))
            question = await b.wait_for("message", lambda d: d["id"] == asked["message_id"])
            for client in (a, b):
                message = await client.wait_for("message", timed_out(asked), timeout=SLACK)
                assert message["id"] == str(uuid.uuid5(TIMEOUT_IDS, asked["message_id"]))
                assert message["content"] == ("No answer to “Deploy &lt;now&gt;?” within 2 s: "
                                              "no &amp; stay.")
                assert (message["answers"], message["user"]) == (["2"], question["user"])
            # A second timeout, if any, would come by the time a later question's has.
            later = await b.call("message", asking({**QUESTION, "timeout": 2}))
            for client in (a, b):
                await client.wait_for("message", timed_out(later), timeout=SLACK)
                assert len(timeouts(client, asked)) == 1
            assert len([m for m in await kept(b) if timed_out(asked)(m)]) == 1
            assert await b.call("message", answering(asked)) == {
                "error": f"Question {asked['message_id']} is closed: it timed out",
                "code": 410}
        resume = {"history": {"after": question["cursor"]}}
        async with signed_in(two.url, token, auth=resume) as back:
            replay = await back.wait_for("replay")
            assert len([m for m in replay["messages"] if timed_out(asked)(m)]) == 1


async def test_a_question_of_a_killed_node_times_out_on_another_node_once(
        node: Callable[..., ServerProcess]) -> None:
    """The node the question was asked through is killed (SIGKILL) before its timeout: the
    other node times it out, at most one sweep late, once."""
    async with node(**FAST) as one, node(**FAST) as two:
        token = await one.sign_in(ALICE)
        async with signed_in(one.url, token) as survivor:
            doomed = await open_client(two.url, token)
            try:
                await doomed.wait_for("authenticated")
                asked = await doomed.call("message", asking({**QUESTION, "timeout": 3}))
                deadline = time.monotonic() + 3  # a little later than the server's
                await survivor.wait_for("message", lambda d: d["id"] == asked["message_id"])
                await two.kill()
            finally:
                with contextlib.suppress(Exception):
                    await close_client(doomed)
            came = await survivor.wait_for_entry("message", timed_out(asked),
                                                 timeout=3 + WORST_LATENESS + SLACK)
            print(f"timed out {came.at - deadline:+.2f} s after its deadline, its node dead "
                  f"(worst case {WORST_LATENESS:g} s)")
            later = await survivor.call("message", asking({**QUESTION, "timeout": 2}))
            await survivor.wait_for("message", timed_out(later), timeout=SLACK)
            assert len(timeouts(survivor, asked)) == 1
            assert len([m for m in await kept(survivor) if timed_out(asked)(m)]) == 1


async def test_while_redis_is_away_questions_and_answers_are_refused_whole(
        tmp_path: Path) -> None:
    """Redis stops (with its append-only file, as a deployment keeping history runs it): a
    question and an answer are refused 503 and delivered to no one; once it is back, the
    answer refused is taken (the question stayed open), and questions work again."""
    async with RedisProcess(persistent_dir=tmp_path) as redis, \
            ServerProcess("--redis-url", redis.url, state_home=tmp_path,
                          env={"JWT_SECRET_KEY": SECRET}) as one, \
            ServerProcess("--redis-url", redis.url, state_home=tmp_path,
                          env={"JWT_SECRET_KEY": SECRET}) as two:
        token = await one.sign_in(ALICE)
        async with signed_in(one.url, token) as a, signed_in(two.url, token) as b:
            asked = await a.call("message", asking())
            await b.wait_for("message", lambda d: d["id"] == asked["message_id"])
            redis.kill()
            assert await a.call("message", {**asking(), "content": "asked away"}) == \
                NOT_RECORDED
            assert await b.call("message", {**answering(asked), "content": "answered away"}) \
                == NOT_RECORDED
            assert a.sio.connected and b.sio.connected
            await redis.start()

            async def crosses() -> None:
                ack = await a.send("after the restart")
                assert ack.get("status") == "ok", ack
                await b.wait_for("message", lambda d: d["id"] == ack["message_id"])

            await eventually(crosses)
            answer = await b.call("message", answering(asked))
            assert_ok_ack(answer)
            await a.wait_for("message", lambda d: d["id"] == answer["message_id"])
            again = await b.call("message", asking())
            assert_ok_ack(again)
            assert_ok_ack(await a.call("message", answering(again)))
            refused = {"asked away", "answered away"}
            history = await kept(a)
            assert not [m for m in history + a.named("message") + b.named("message")
                        if m["content"] in refused]
            assert asked["message_id"] in [m["id"] for m in history]
        assert "Traceback" not in one.stderr + two.stderr


async def test_a_question_or_answer_whose_message_cannot_be_kept_is_undone(
        node: Callable[..., ServerProcess], redis: RedisProcess) -> None:
    """The user's history refuses writes (its key holds a string, not a stream): questions
    and answers are refused 503 after they were recorded, and each is undone: more
    questions refused than may be open count for nothing, the question answered is still
    open once the history takes writes again, and the poll takes that connection's
    answer."""
    async with node() as one, node() as two:
        token = await one.sign_in(ALICE)
        async with signed_in(one.url, token) as a, signed_in(two.url, token) as b:
            asked = await a.call("message", asking())
            poll = await a.call("message", asking({**QUESTION, "keep_open": True}))
            await b.wait_for("message", lambda d: d["id"] == poll["message_id"])
            history = f"roomz:history:{ALICE}"
            store = aioredis.from_url(redis.url)
            try:
                await store.rename(history, f"{history}:aside")
                await store.set(history, "not a stream")
                for _ in range(MAX_OPEN_PER_USER + 1):
                    assert await a.call("message", asking()) == NOT_KEPT
                assert await b.call("message", answering(asked)) == NOT_KEPT
                assert await b.call("message", answering(poll)) == NOT_KEPT
                await store.delete(history)
                await store.rename(f"{history}:aside", history)
            finally:
                await store.aclose()
            assert_ok_ack(await b.call("message", answering(asked)))
            assert_ok_ack(await b.call("message", answering(poll)))
            assert_ok_ack(await a.call("message", asking()))
