"""Questions across restarts of the server (docs/protocol.md 3.8): kept in the state
directory, a question asked before a restart is answered after it, a closed one stays
closed, and a question that cannot be recorded is refused whole. Bare Socket.IO clients
against a real server restarted on the same state directory."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from roomz.server.local import LocalServer
from roomz.server.question_store import QuestionStore
from tests.server.proc import RestartableServer

from .helpers import TIMEOUT, assert_ok_ack, signed_in
from .test_rich_messages import ALICE, QUESTION, asking


def answering(asked: dict[str, Any], *chosen: str) -> dict[str, Any]:
    """A ``message`` payload answering the question whose acknowledgement is ``asked``."""
    return {"content": "an answer", "answer_to": asked["message_id"],
            "answers": list(chosen or ["1"])}


async def restart(server: LocalServer) -> None:
    """Stop the server and start it again on its port and state directory."""
    await asyncio.wait_for(server.stop(), TIMEOUT)
    await asyncio.wait_for(server.start(), TIMEOUT)


@contextmanager
def refusing_writes(store: QuestionStore) -> Iterator[None]:
    """``store``'s file refuses every write for the block, as a full disk would (no other
    process can lock it: the server holds it exclusively)."""
    db = store._db
    db.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        db.execute("PRAGMA query_only = OFF")


async def test_a_question_asked_before_a_kill_is_answered_after_the_restart(
        restartable: RestartableServer) -> None:
    """``roomz-server`` is killed (SIGKILL) with a question open and started again: a new
    connection's answer is accepted and delivered; a second hears it is closed."""
    proc = await restartable.start()
    token = await proc.sign_in(ALICE)
    async with signed_in(proc.url, token) as bot:
        asked = await bot.call("message", asking())
        assert_ok_ack(asked)
        await proc.stop(signal.SIGKILL)
    await restartable.start()
    async with signed_in(restartable.url, token) as person:
        answer = await person.call("message", answering(asked, "1"))
        assert_ok_ack(answer)
        heard = await person.wait_for("message", lambda d: d["id"] == answer["message_id"])
        assert (heard["answer_to"], heard["answers"]) == (asked["message_id"], ["1"])
        assert await person.call("message", answering(asked, "2")) == {
            "error": f"Question {asked['message_id']} is closed: answered already", "code": 410}


async def test_a_question_closed_before_a_restart_is_still_closed_after_it(
        server: LocalServer) -> None:
    """Answered, or timed out, before the restart: a late answer after it hears 410 and
    why, not 404 "unknown"."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:
        answered = await alice.call("message", asking())
        assert_ok_ack(await alice.call("message", answering(answered)))
        timed_out = await alice.call("message", asking({**QUESTION, "timeout": 1}))
        await alice.wait_for("message", lambda d: d.get("answer_to") == timed_out["message_id"]
                             and d.get("timed_out") is True, timeout=10)
    await restart(server)
    async with signed_in(server.url, token) as alice:
        assert await alice.call("message", answering(answered)) == {
            "error": f"Question {answered['message_id']} is closed: answered already",
            "code": 410}
        assert await alice.call("message", answering(timed_out)) == {
            "error": f"Question {timed_out['message_id']} is closed: it timed out",
            "code": 410}


async def test_a_poll_takes_answers_on_both_sides_of_a_restart(server: LocalServer) -> None:
    """keep_open: an answer before the restart stays given and the poll stays open; after
    it, each connection (all new, new ids) answers once, and a second time hears 409."""
    poll = {**QUESTION, "keep_open": True, "timeout": 600}
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as bot:
        asked = await bot.call("message", asking(poll))
        assert_ok_ack(await bot.call("message", answering(asked, "1")))
    await restart(server)
    async with signed_in(server.url, token) as bot, signed_in(server.url, token) as person:
        assert_ok_ack(await person.call("message", answering(asked, "2")))
        assert_ok_ack(await bot.call("message", answering(asked, "1")))
        assert await person.call("message", answering(asked, "1")) == {
            "error": f"You answered question {asked['message_id']} already", "code": 409}


async def test_a_question_or_answer_that_cannot_be_recorded_is_refused_whole(
        server: LocalServer) -> None:
    """The questions' file refuses writes: a question, and an answer, are refused 503 "try
    again shortly" at once; neither is delivered nor kept in the history, and the question
    stays open; once the file takes writes again, both go through."""
    token = await server.sign_in(ALICE)
    questions = server.server.chat.questions
    assert questions is not None
    refused = {"error": "Message not sent: the server cannot record its question or answer "
                        "just now; try again shortly", "code": 503}
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        asked = await alice.call("message", asking())
        with refusing_writes(questions._store):
            assert await alice.call("message", asking()) == refused
            assert await alice.call("message", answering(asked)) == refused
        before_barrier = await other.barrier()
        assert [e[1]["id"] for e in before_barrier if e[0] == "message"] == [asked["message_id"]]
        kept = await other.call("history", {"limit": 10})
        assert [m["id"] for m in kept["messages"]][:1] == [asked["message_id"]]
        assert len(kept["messages"]) == 2  # the question and the barrier
        assert_ok_ack(await alice.call("message", answering(asked)))
        assert_ok_ack(await alice.call("message", asking()))
