"""The client's rich messages: ``send`` with a content type, ``ask``/``poll`` and
``answer`` between two connections of one user, ``who``, on a real server; and long
Markdown in parts that each render on their own (:mod:`roomz.content`)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from roomz import ClientError, NotSupportedError, SyncClient
from roomz.content import CODE, MARKDOWN, Code, Markdown, split_content
from roomz.limits import MAX_MESSAGE_LENGTH
from roomz.message import Message
from roomz.questions import Answer
from roomz.server.local import LocalServer
from roomz.server.testing import ThreadedServer
from tests.events import Events
from tests.faults.proxy import TcpProxy

from .conftest import SignedIn
from .helpers import TIMEOUT, assert_send_ack, restart_in_process

ALICE = "alice@example.com"


async def test_send_says_what_the_text_is(server: LocalServer, signed_in: SignedIn) -> None:
    """content_type, subject and language reach the other connection, which reads them from
    the Message view (unescaped); Markdown(...).fields() gives the same fields."""
    sender, reader = await signed_in(server, ALICE), await signed_in(server, ALICE)
    seen = Events(reader)
    ack = await sender.send("# A & B", content_type=MARKDOWN, subject="Re: <x>")
    assert_send_ack(ack)
    code = Code("x = 1", language="python")
    assert_send_ack(await sender.send(code.text, **code.fields()))
    first = Message(await seen.wait_for("message", lambda d: d["id"] == ack["message_id"]))
    assert (first.content_type, first.text, first.subject) == (MARKDOWN, "# A & B", "Re: <x>")
    second = Message(await seen.wait_for("message", lambda d: d.get("content_type") == CODE))
    assert (second.text, second.language) == ("x = 1", "python")
    assert await sender.send("x", content_type="text/html") == {
        "error": "Unknown 'content_type' 'text/html': expected one of text/plain, "
                 "text/markdown, text/code, text/diff, application/x-question", "code": 400}


async def test_ask_returns_the_answer_another_connection_chose(
        server: LocalServer, signed_in: SignedIn) -> None:
    """ask() posts the question; answer() from another connection (by label) is what ask()
    returns, with the free text of an answer that takes it."""
    asker, person = await signed_in(server, ALICE), await signed_in(server, ALICE)

    async def answer_it(data: dict[str, object]) -> None:
        message = Message(data)
        if message.question is not None:
            assert message.text == "Lunch?\n1. pizza\n2. sushi"  # the fallback text
            await person.answer(message, "sushi")

    person.on("message", answer_it)
    answer = await asyncio.wait_for(asker.ask("Lunch?", ["pizza", "sushi"], timeout=30),
                                    TIMEOUT)
    assert (answer.choice, answer.ids, answer.timed_out) == ("sushi", ("2",), False)


async def test_ask_and_poll_say_the_question_they_asked_before_they_wait(
        server: LocalServer, signed_in: SignedIn) -> None:
    """``on_asked`` gets the question, once, with the id its answers name: a program that
    stops while it waits can act on the answer later."""
    asker, person = await signed_in(server, ALICE), await signed_in(server, ALICE)
    asked: list[tuple[str, str]] = []

    async def answer_it(data: dict[str, object]) -> None:
        message = Message(data)
        if message.question is not None:
            await person.answer(message, "sushi")

    person.on("message", answer_it)
    answer = await asyncio.wait_for(asker.ask(
        "Lunch?", ["pizza", "sushi"], timeout=30,
        on_asked=lambda q: asked.append((q.id, q.text))), TIMEOUT)
    assert answer.event is not None
    assert asked == [(answer.event["answer_to"], "Lunch?")]
    polled = await asyncio.wait_for(asker.poll(
        "Dinner?", ["pizza", "sushi"], timeout=1,
        on_asked=lambda q: asked.append((q.id, q.text))), TIMEOUT)
    assert [a.choice for a in polled] == ["sushi"] and polled[0].event is not None
    assert asked[1:] == [(polled[0].event["answer_to"], "Dinner?")]


async def test_ask_times_out_to_its_default_also_when_the_asker_was_away(
        server: LocalServer, signed_in: SignedIn) -> None:
    """Nobody answers: the server's timeout gives the default. The asker's connection is
    cut while it waits; the server times the question out all the same, and the asker, back
    by then, gets the server's timeout message with the default."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        asker = await signed_in(server, ALICE, url=proxy.url, reconnect_delay=0.1,
                                max_reconnect_attempts=50)
        person = await signed_in(server, ALICE)
        seen = Events(person)
        waiting = asyncio.create_task(asker.ask("Deploy?", ["yes", "no"], timeout=3,
                                                default="no"))
        question = await seen.wait_for("message", lambda d: "question_data" in d)
        proxy.cut()
        await seen.wait_for("user_left")
        answered = await asyncio.wait_for(waiting, TIMEOUT + 5)
        assert (answered.choice, answered.timed_out) == ("no", True)
        assert answered.event is not None and answered.event["answer_to"] == question["id"]
        await seen.wait_for("message", lambda d: d.get("timed_out") is True)
    finally:
        await proxy.close()


async def test_ask_returns_the_answer_given_after_a_server_restart(
        server: LocalServer, signed_in: SignedIn) -> None:
    """A question outlives a restart of the server (same state directory): a person answers
    once it is back, every connection sees the answer (the asker's too, reconnected by
    itself), and ask(), started before the restart, returns it rather than its default."""
    asker = await signed_in(server, ALICE, reconnect_delay=0.1, max_reconnect_attempts=50)
    person = await signed_in(server, ALICE, reconnect_delay=0.1, max_reconnect_attempts=50)
    by_asker, by_person = Events(asker), Events(person)
    waiting = asyncio.create_task(asker.ask("Deploy?", ["yes", "no"], timeout=600,
                                            default="no"))
    question = await by_person.wait_for("message", lambda d: "question_data" in d)
    await restart_in_process(server)
    await by_person.wait_for("authenticated")  # the person's connection is back
    ack = await person.answer(question, "yes")
    assert_send_ack(ack)
    answered = await asyncio.wait_for(waiting, TIMEOUT)
    assert (answered.choice, answered.timed_out) == ("yes", False)
    assert answered.event is not None and answered.event["id"] == ack["message_id"]
    for seen in (by_asker, by_person):
        await seen.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert by_asker.count("authenticated") == 1  # the asker's connection came back too


async def test_ask_gets_the_servers_timeout_when_it_passed_while_the_server_was_down(
        server: LocalServer, signed_in: SignedIn) -> None:
    """The question's timeout passes while the server is stopped; starting again, the
    server times it out at once, in the asker's name, and keeps that in the history: the
    asker, back by itself, gets the default from the server's message (``event`` set),
    long before its own deadline (the timeout plus connection_timeout)."""
    asker = await signed_in(server, ALICE, reconnect_delay=0.1, max_reconnect_attempts=50,
                            connection_timeout=30)
    seen = Events(asker)
    waiting = asyncio.create_task(asker.ask("Deploy?", ["yes", "no"], timeout=3,
                                            default="no"))
    question = await seen.wait_for("message", lambda d: "question_data" in d)
    deadline = time.time() + 3  # the server's is a little earlier: it asked before the echo
    await asyncio.wait_for(server.stop(), TIMEOUT)
    assert not waiting.done(), "the question timed out before the server stopped"
    await asyncio.sleep(max(0.0, deadline - time.time()))  # the server is down meanwhile
    await asyncio.wait_for(server.start(), TIMEOUT)
    answered = await asyncio.wait_for(waiting, TIMEOUT)
    assert (answered.choice, answered.ids, answered.timed_out) == ("no", ("2",), True)
    assert answered.event is not None
    assert answered.event["answer_to"] == question["id"]
    assert answered.event["content"] == "No answer to “Deploy?” within 3 s: no."
    assert answered.event.get("replayed") is True  # kept as the server started, then replayed


async def test_ask_answers_its_default_itself_when_the_server_does_not_come_back(
        server: LocalServer, signed_in: SignedIn) -> None:
    """The server stops while a question waits and stays away: the client's own deadline,
    the timeout plus connection_timeout, answers with the default."""
    asker = await signed_in(server, ALICE, reconnect_delay=0.1, max_reconnect_attempts=50,
                            connection_timeout=2)
    seen = Events(asker)
    waiting = asyncio.create_task(asker.ask("Again?", ["yes", "no"], timeout=1, default="no"))
    await seen.wait_for("message", lambda d: "question_data" in d)
    await asyncio.wait_for(server.stop(), TIMEOUT)
    again = await asyncio.wait_for(waiting, TIMEOUT + 5)
    assert (again.choice, again.timed_out, again.event) == ("no", True, None)


async def test_poll_collects_one_answer_per_connection(server: LocalServer,
                                                       signed_in: SignedIn) -> None:
    """poll() keeps the question open until its timeout and returns every answer."""
    asker = await signed_in(server, ALICE)
    people = [await signed_in(server, ALICE) for _ in range(2)]
    for person, choice in zip(people, ["tea", "coffee"], strict=True):
        async def vote(data: dict[str, object], person=person, choice=choice) -> None:
            if Message(data).question is not None:
                await person.answer(data, choice)
        person.on("message", vote)
    answers = await asyncio.wait_for(asker.poll("Drink?", ["tea", "coffee"], timeout=2),
                                     TIMEOUT)
    assert sorted(a.choice or "" for a in answers) == ["coffee", "tea"]


async def test_who_and_answer_errors(server: LocalServer, signed_in: SignedIn) -> None:
    """who() lists each connection's kind and name; answering a question twice gives the
    410 acknowledgement; a choice the question lacks is a ValueError before anything goes."""
    bot = await signed_in(server, ALICE, kind="bot", name="helper")
    person = await signed_in(server, ALICE, kind="terminal")
    seen = Events(person)
    asking = asyncio.create_task(bot.ask("Go?", ["yes", "no"], timeout=30))
    question = Message(await seen.wait_for("message"))
    with pytest.raises(ValueError, match="'maybe' is not one of the answers"):
        await person.answer(question, "maybe")
    assert_send_ack(await person.answer(question, "yes"))
    assert (await asyncio.wait_for(asking, TIMEOUT)).choice == "yes"
    late = await person.answer(question, "no")
    assert late == {"error": f"Question {question.id} is closed: answered already",
                    "code": 410}
    listed = [(c["kind"], c["name"], c["you"]) for c in await person.who()]
    assert listed == [("bot", "helper", False), ("terminal", None, True)]
    assert bot.supports("questions") and bot.supports("who")
    with pytest.raises(ValueError, match="kind must be one of"):
        SyncClient(server.url, kind="robot")


def test_sync_client_asks_and_answers() -> None:
    """SyncClient's ask blocks until a SyncClient in another thread answered; who too."""
    with ThreadedServer() as server, \
            SyncClient(server.url, server.request_link(ALICE).token) as asker, \
            SyncClient(server.url, server.request_link(ALICE).token) as person:
        seen = Events(person)
        result: list[Answer] = []
        thread = threading.Thread(target=lambda: result.append(
            asker.ask("Ship it?", ["yes", "no"], timeout=30)))
        thread.start()
        question = seen.wait_for_sync("message", lambda d: "question_data" in d)
        assert person.answer(question, "yes")["status"] == "ok"
        thread.join(TIMEOUT)
        assert [a.choice for a in result] == ["yes"]
        assert [c["kind"] for c in person.who()] == ["script", "script"]


@pytest.mark.timeout(30)
def test_closing_the_sync_client_ends_an_ask_another_thread_waits_in() -> None:
    """A thread waits in ``ask()``; ``close()`` from another thread ends that wait at once
    with an error saying so (the loop used to stop under it, and the thread waited for
    good)."""
    with ThreadedServer() as server, \
            SyncClient(server.url, server.request_link(ALICE).token) as person:
        asker = SyncClient(server.url, server.request_link(ALICE).token)
        asker.connect()
        seen = Events(person)
        outcome: list[BaseException | Answer] = []

        def ask() -> None:
            try:
                outcome.append(asker.ask("Ship it?", ["yes", "no"], timeout=120))
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                outcome.append(exc)

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        seen.wait_for_sync("message", lambda d: "question_data" in d)
        asker.close()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "ask() still waits after close()"
        (error,) = outcome
        # ConnectionError once the question went; a ClientError (its answer awaited) if
        # the close came first: either way, it says the connection closed.
        assert isinstance(error, ClientError), error
        assert "closed" in str(error)


def test_long_markdown_goes_in_parts_that_each_render() -> None:
    """Markdown is cut between blocks; a code block too long for one message is closed at
    the end of a part and opened again, with its language, in the next; code keeps its
    indentation."""
    code = "\n".join(f"    value_{n} = {n}  # <&>" for n in range(80))
    text = f"# Report\n\nIntro.\n\n```python\n{code}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    parts = Markdown(text).parts()
    assert len(parts) >= 3
    assert all(len(p) <= MAX_MESSAGE_LENGTH for p in parts)
    fenced = [p for p in parts if "value_" in p]
    assert all(p.count("```") == 2 and "```python\n    value_" in p for p in fenced)
    assert "".join(parts).count("value_") == 80
    assert parts[-1].endswith("| 1 | 2 |")
    lines = split_content("def f():\n    return 1\n" * 100, CODE)
    assert len(lines) > 1
    assert {line for part in lines for line in part.split("\n")} == {"def f():", "    return 1"}


async def test_the_published_servers_lack_of_questions_is_a_clear_error(
        server: LocalServer, signed_in: SignedIn) -> None:
    """On a server whose authenticated names no features, ask/answer/who raise
    NotSupportedError at once (the published server: tests/interop)."""
    client = await signed_in(server, ALICE)
    client._features = frozenset()  # what a server without the extension announces
    with pytest.raises(NotSupportedError, match="does not support questions"):
        await client.ask("Go?", ["yes"])
    with pytest.raises(NotSupportedError, match="does not support listing connections"):
        await client.who()
