"""Rich messages on the wire (docs/protocol.md 3.7, 3.8): content types, subjects,
questions with their answers and timeouts, and who is connected. Bare Socket.IO clients
against a real server: what any client of the protocol sees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from roomz.server.local import LocalServer
from roomz.server.question_rules import MAX_OPEN_PER_USER

from .helpers import REFUSED, assert_ok_ack, connected, signed_in

ALICE = "alice@example.com"
QUESTION = {"question": "Deploy <now>?", "timeout": 30, "default": "2",
            "answers": [{"id": "1", "label": "yes"}, {"id": "2", "label": "no & stay"},
                        {"id": "3", "label": "other", "free_text": True}]}
PLAIN_KEYS = {"id", "user", "content", "timestamp", "connection_id"}


def asking(question: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A ``message`` payload asking ``question`` (QUESTION by default)."""
    return {"content": "Deploy now?\n1. yes\n2. no", "content_type": "application/x-question",
            "question_data": question or QUESTION, **extra}


async def test_a_message_without_the_extension_is_the_published_message(
        server: LocalServer) -> None:
    """No rich field sent, none delivered: exactly the fields of before (and the history's
    cursor, another extension)."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:
        ack = await alice.send("hi")
        message = await alice.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert set(message) == {*PLAIN_KEYS, "cursor"}


async def test_markdown_with_a_subject_arrives_with_its_type_escaped_like_content(
        server: LocalServer) -> None:
    """content_type, subject and language go to every connection; text stays escaped."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        ack = await alice.call("message", {"content": "# <b>Report</b>",
                                           "content_type": "text/markdown",
                                           "subject": "Report <1>"})
        assert_ok_ack(ack)
        code = await alice.call("message", {"content": "x = 1", "content_type": "text/code",
                                            "language": "python"})
        assert_ok_ack(code)
        for client in (alice, other):
            got = await client.wait_for("message", lambda d: d["id"] == ack["message_id"])
            assert got["content"] == "# &lt;b&gt;Report&lt;/b&gt;"
            assert (got["content_type"], got["subject"]) == ("text/markdown", "Report &lt;1&gt;")
            got = await client.wait_for("message", lambda d: d["id"] == code["message_id"])
            assert (got["content_type"], got["language"]) == ("text/code", "python")


@pytest.mark.parametrize(("payload", "error"), [
    ({"content_type": "text/html"}, "Unknown 'content_type' 'text/html': expected one of "
     "text/plain, text/markdown, text/code, text/diff, application/x-question"),
    ({"content_type": 7}, "Unknown 'content_type' '7'"),
    ({"subject": "two\nlines"}, "Invalid 'subject': one line"),
    ({"subject": "x" * 201}, "Invalid 'subject': 201 characters, at most 200"),
    ({"language": "py thon"}, "Invalid 'language'"),
    ({"content_type": "application/x-question"}, "Missing 'question_data'"),
    ({"question_data": QUESTION}, "'question_data' goes with content_type"),
    (asking({**QUESTION, "answers": []}), "Invalid 'question_data.answers': a list of 1-20"),
    (asking({**QUESTION, "answers": [{"id": "1"}]}),
     "Invalid 'question_data.answers[0].label': must be non-empty text"),
    (asking({**QUESTION, "answers": [{"id": "1", "label": "a"}, {"id": "1", "label": "b"}]}),
     "Invalid 'question_data.answers': two answers have the same 'id'"),
    (asking({**QUESTION, "timeout": 0}), "Invalid 'question_data.timeout': seconds, 1 to 86400"),
    (asking({**QUESTION, "multi_select": "yes"}),
     "Invalid 'question_data.multi_select': must be true or false"),
    (asking({**QUESTION, "default": "9"}), "Invalid 'question_data.default'"),
    (asking({**QUESTION, "question": ""}), "Invalid 'question_data.question'"),
    (asking("nope"), "Invalid 'question_data': must be an object"),  # type: ignore[arg-type]
    ({"answer_to": "x"}, "Invalid 'answers'"),
    ({"answers": ["1"]}, "Invalid 'answer_to'"),
], ids=lambda v: str(v)[:40])
async def test_bad_rich_fields_get_a_400_that_names_the_field(
        server: LocalServer, payload: dict[str, Any], error: str) -> None:
    """Each broken field is refused with 400 and its name; nothing is delivered."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:
        ack = await alice.call("message", {"content": "text", **payload})
        assert ack["code"] == 400 and ack["error"].startswith(error), ack
        await alice.barrier()
        assert alice.count("message") == 1  # the barrier's own


async def test_a_question_answered_once_by_another_connection(server: LocalServer) -> None:
    """The question reaches every connection with its data (escaped); the first answer is
    delivered to all and closes it; a second answer hears it is closed, an unknown id 404."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as bot, signed_in(server.url, token) as person:
        ack = await bot.call("message", asking())
        question = await person.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert question["content_type"] == "application/x-question"
        assert question["question_data"] == {
            "question": "Deploy &lt;now&gt;?", "multi_select": False, "timeout": 30,
            "keep_open": False, "default": ["2"],
            "answers": [{"id": "1", "label": "yes", "free_text": False},
                        {"id": "2", "label": "no &amp; stay", "free_text": False},
                        {"id": "3", "label": "other", "free_text": True}]}
        answer = await person.call("message", {"content": "other: tomorrow",
                                               "answer_to": ack["message_id"],
                                               "answers": ["3"], "free_text": "tomorrow"})
        assert_ok_ack(answer)
        heard = await bot.wait_for("message", lambda d: d["id"] == answer["message_id"])
        assert (heard["answer_to"], heard["answers"], heard["free_text"]) == (
            ack["message_id"], ["3"], "tomorrow")
        again = await bot.call("message", {"content": "yes", "answer_to": ack["message_id"],
                                           "answers": ["1"]})
        assert again == {"error": f"Question {ack['message_id']} is closed: answered already",
                         "code": 410}
        unknown = await bot.call("message", {"content": "yes", "answer_to": "nope",
                                             "answers": ["1"]})
        assert unknown == {"error": "Unknown question nope: no question of yours has that id",
                           "code": 404}


@pytest.mark.parametrize(("answer", "error"), [
    ({"answers": ["9"]}, "Invalid 'answers': '9' is not an answer to question"),
    ({"answers": ["1", "2"]}, "Invalid 'answers': this question takes one answer"),
    ({"answers": ["1"], "free_text": "x"},
     "Invalid 'free_text': none of the chosen answers takes free text"),
])
async def test_an_answer_that_does_not_fit_is_refused_and_the_question_stays_open(
        server: LocalServer, answer: dict[str, Any], error: str) -> None:
    """A wrong answer is a 400 naming the field; a right one still closes the question."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:
        asked = await alice.call("message", asking())
        ack = await alice.call("message", {"content": "x", "answer_to": asked["message_id"],
                                           **answer})
        assert ack["code"] == 400 and ack["error"].startswith(error), ack
        assert_ok_ack(await alice.call("message", {"content": "yes", "answers": ["1"],
                                                   "answer_to": asked["message_id"]}))


async def test_the_timeout_answers_with_the_default_after_the_asker_has_gone(
        server: LocalServer) -> None:
    """The asker disconnects at once; the server still times the question out, in the
    asker's name, with the default's label; answering afterwards hears 410."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as person:
        async with signed_in(server.url, token) as bot:
            asked = await bot.call("message", asking({**QUESTION, "timeout": 1}))
            bot_connection = bot.connection_id
        timeout = await person.wait_for("message", lambda d: d.get("timed_out") is True,
                                        timeout=10)
        assert timeout["answer_to"] == asked["message_id"]
        assert timeout["answers"] == ["2"]
        assert timeout["content"] == "No answer to “Deploy &lt;now&gt;?” within 1 s: no &amp; stay."
        assert timeout["connection_id"] == bot_connection
        late = await person.call("message", {"content": "yes", "answers": ["1"],
                                             "answer_to": asked["message_id"]})
        assert late == {"error": f"Question {asked['message_id']} is closed: it timed out",
                        "code": 410}


async def test_a_kept_open_question_takes_one_answer_per_connection_until_its_timeout(
        server: LocalServer) -> None:
    """keep_open (a poll): each connection answers once (409 the second time), and the
    timeout closes it with its timeout_message."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as bot, signed_in(server.url, token) as person:
        poll = {**QUESTION, "keep_open": True, "timeout": 2, "timeout_message": "Poll over"}
        del poll["default"]
        asked = await bot.call("message", asking(poll))
        answer = {"content": "yes", "answer_to": asked["message_id"], "answers": ["1"]}
        assert_ok_ack(await person.call("message", answer))
        assert_ok_ack(await bot.call("message", answer))
        assert await person.call("message", answer) == {
            "error": f"You answered question {asked['message_id']} already", "code": 409}
        closed = await bot.wait_for("message", lambda d: d.get("timed_out") is True,
                                    timeout=10)
        assert (closed["content"], closed["answers"]) == ("Poll over", [])


async def test_who_lists_the_users_connections_with_their_kinds(server: LocalServer) -> None:
    """Each connection says what it is in the CONNECT auth payload; who lists the user's,
    oldest first, the asking one marked; another user's are not listed."""
    token = await server.sign_in(ALICE)
    bob = await server.sign_in("bob@example.com")
    async with connected(server.url, token, auth={"client": {"kind": "bot", "name": "helper"}}
                         ) as bot, \
            connected(server.url, token) as unnamed, \
            connected(server.url, bob, auth={"client": {"kind": "terminal"}}), \
            connected(server.url, token, auth={"client": {"kind": "page"}}) as page:
        await page.wait_for("authenticated")
        assert page.authenticated["features"] == ["content_types", "questions", "who", "send_once"]
        await unnamed.call("set_display_name", {"display_name": "Ann"})
        ack = await page.call("who", {})
    assert ack["status"] == "ok"
    listed = [(c["kind"], c["name"], c["display_name"], c["you"]) for c in ack["connections"]]
    assert listed == [("bot", "helper", None, False), (None, None, "Ann", False),
                      ("page", None, None, True)]
    ids = {c["connection_id"] for c in ack["connections"]}
    assert ids == {bot.connection_id, unnamed.connection_id, page.connection_id}


@pytest.mark.parametrize(("auth", "why"), [
    ({"client": {"kind": "robot"}}, "'client.kind' in the auth payload must be one of"),
    ({"client": "bot"}, "'client' in the auth payload must be an object"),
    ({"client": {"kind": "bot", "name": "x" * 51}}, "'client.name' in the auth payload"),
], ids=["kind", "not-an-object", "name"])
async def test_a_malformed_client_in_the_auth_payload_is_refused_with_why(
        server: LocalServer, auth: dict[str, Any], why: str) -> None:
    """A connection that says something wrong about itself is refused, and told what."""
    token = await server.sign_in(ALICE)
    errors: list[Any] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        await asyncio.wait_for(sio.connect(server.url, transports=["websocket"], auth=auth,
                                           headers={"Cookie": f"session_token={token}"},
                                           wait_timeout=5), 6)
    await sio.disconnect()
    assert errors and errors[0]["message"].startswith(f"Bad auth payload: {why}")


async def test_too_many_open_questions_are_refused_until_one_closes() -> None:
    """A user's 51st open question is a 429 that says why; answering one makes room, and
    another user is not counted against them."""
    async with LocalServer(message_rate=1000, message_burst=1000) as server:
        alice, bob = await server.sign_in(ALICE), await server.sign_in("bob@example.com")
        async with signed_in(server.url, alice) as asker, signed_in(server.url, bob) as other:
            asked = [await asker.call("message", asking()) for _ in range(MAX_OPEN_PER_USER)]
            for ack in asked:
                assert_ok_ack(ack)
            refused = await asker.call("message", asking())
            assert refused == {"error": f"Too many open questions: at most {MAX_OPEN_PER_USER}; "
                                        "wait for answers or timeouts", "code": 429}
            assert_ok_ack(await other.call("message", asking()))
            assert_ok_ack(await asker.call("message", {"content": "yes", "answers": ["1"],
                                                       "answer_to": asked[0]["message_id"]}))
            assert_ok_ack(await asker.call("message", asking()))
