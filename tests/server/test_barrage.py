"""Generated junk thrown at the server: every answer is a documented one and nothing falls over.

Hypothesis cannot drive ``async def`` tests, so each test is synchronous: it owns an event
loop, starts one server and its connections in it, and runs every example on that loop.
"""

from __future__ import annotations

import asyncio
import html
import json
import operator
import re
import string
import unicodedata
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomz.server.local import LocalServer

from .helpers import (
    INVALID_CONTENT,
    INVALID_FORMAT,
    INVALID_NAME,
    PROBLEM_KEYS,
    ChatClient,
    assert_ok_ack,
    close_client,
    link_sent,
    open_client,
)

T = TypeVar("T")
ALICE = "alice@example.com"
# The protocol's email rule, written out here so the test does not trust the server's copy.
EMAIL_RULE = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
OK_BODY = {"status": "ok", "message": "Magic link sent. Check your email."}
BARRAGE = settings(max_examples=200, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Payloads

ODD_TEXT = st.sampled_from([
    "", " ", "\t", "\n", "\r\n", "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029",
    "\u200b", "\u202e", "\ufeff", "\ud800", "a\udfffb", "🤖", "<script>alert(1)</script>",
    "&amp;", "&#x27;", "null", "{}", '{"content": "x"}', "a" * 50, " " + "b" * 50 + " ",
    "c" * 51, "é" * 1000, "&" * 1000, "<" * 1001, " " + "'" * 1000 + "\n",
])
TEXT = st.one_of(st.text(max_size=80), ODD_TEXT,
                 st.text(st.characters(min_codepoint=0x80), max_size=60))
# Up to 200k characters, built cheaply; printable ASCII keeps the frame under engine.io's 1 MB.
CHUNKS = st.text(string.printable + "<>&\"'", min_size=1, max_size=8)
HUGE_TEXT = st.one_of(st.builds(operator.mul, CHUNKS, st.integers(100, 1_000)),
                      st.builds(operator.mul, CHUNKS, st.integers(20_000, 25_000)))
# No bytes: a binary packet closes the connection (tests/security/test_binary_packets.py).
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)
FIELD_VALUES = st.one_of(TEXT, HUGE_TEXT, TEXT, HUGE_TEXT, JSON_LIKE)  # repeats weight a branch


def objects_with(field: str) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts that usually carry ``field`` with an odd value, plus other keys."""
    others = {key: FIELD_VALUES for key in ("content", "display_name") if key != field}
    return st.one_of(
        st.fixed_dictionaries({field: FIELD_VALUES}, optional={**others, "extra": JSON_LIKE}),
        st.fixed_dictionaries({field: HUGE_TEXT}),
        st.dictionaries(st.text(max_size=12), JSON_LIKE, max_size=4),
    )


def payloads(field: str) -> st.SearchStrategy[Any]:
    """What a client might emit: nothing, any JSON-like value, objects, several arguments."""
    objects = objects_with(field)
    single = st.one_of(objects, objects, objects, JSON_LIKE, HUGE_TEXT)
    several = st.lists(single, max_size=3).map(tuple)  # a tuple is sent as several arguments
    return st.one_of(single, single, several)


def first_argument(payload: Any) -> Any:
    """The first argument the server receives for ``payload`` (None when there is none)."""
    if isinstance(payload, tuple):
        return payload[0] if payload else None
    return payload


# The answers the protocol documents

def expected_message_answer(payload: Any) -> dict[str, Any] | None:
    """The documented error for sending ``payload`` as a message, or None when it must succeed."""
    data = first_argument(payload)
    if not isinstance(data, dict):
        return INVALID_FORMAT
    content = data.get("content")
    if not isinstance(content, str) or not content.strip():
        return INVALID_CONTENT
    if (length := len(content.strip())) > 1000:  # typed characters, whatever escaping costs
        return {"error": f"Message too long: {length} characters, at most 1000", "code": 400}
    return None


def assert_delivered_content(sent: str, content: str) -> None:
    """``content`` is ``sent`` trimmed and HTML-escaped, whole."""
    assert content == html.escape(sent.strip())


def name_is_invalid(name: str) -> bool:
    """True when the protocol requires ``name`` to be refused."""
    trimmed = name.strip()
    return not 1 <= len(trimmed) <= 50 or any(
        c in "\r\n" or (unicodedata.category(c) == "Cc" and c != "\t") for c in trimmed
    )


def allowed_name_answers(payload: Any) -> list[dict[str, Any]]:
    """The answers the protocol allows to ``set_display_name`` with ``payload``."""
    data = first_argument(payload)
    if not isinstance(data, dict):
        return [INVALID_FORMAT]
    name = data.get("display_name")
    if name is None or name == "":
        return [{"status": "ok", "display_name": None}]
    if not isinstance(name, str) or name_is_invalid(name):
        return [INVALID_NAME]
    ok = {"status": "ok", "display_name": html.escape(name.strip())}
    if any(unicodedata.category(c) in ("Zl", "Zp") for c in name):
        return [ok, INVALID_NAME]  # line/paragraph separators: a server may call them newlines
    return [ok]


# One server, one loop, for all examples of a test

def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending on ``loop`` and close it, as ``asyncio.run`` would."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()

    async def drain() -> None:
        await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 10)

    loop.run_until_complete(drain())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@dataclass
class Chat:
    """A running server with two connections of the same user, driven from a sync test."""

    loop: asyncio.AbstractEventLoop
    server: LocalServer
    client: ChatClient
    observer: ChatClient

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        """Run ``coro`` on this chat's loop, bounded by ``timeout``."""
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def assert_still_up(self) -> None:
        """The connection still sends and the server still answers."""
        assert_ok_ack(self.run(self.client.send("still here")))
        assert self.client.sio.connected and self.observer.sio.connected


@contextmanager
def running_chat(**overrides: Any) -> Iterator[Chat]:
    """Start a server and two signed-in connections of Alice on a fresh loop; stop them after."""
    loop = asyncio.new_event_loop()

    async def start() -> tuple[LocalServer, ChatClient, ChatClient]:
        server = LocalServer(**overrides)
        await server.__aenter__()
        token = await server.sign_in(ALICE)
        client = await open_client(server.url, token)
        await client.wait_for("authenticated")
        observer = await open_client(server.url, token)
        await observer.wait_for("authenticated")
        return server, client, observer

    try:
        server, client, observer = loop.run_until_complete(asyncio.wait_for(start(), 20))
        chat = Chat(loop, server, client, observer)
        try:
            yield chat
        finally:
            chat.run(close_client(observer))
            chat.run(close_client(client))
            chat.run(server.__aexit__(None, None, None))
    finally:
        close_loop(loop)


def test_message_barrage() -> None:
    """Any message payload gets the ack or a documented error, and the connection stays up."""
    with running_chat() as chat:

        @BARRAGE
        @given(payload=payloads("content"))
        def send(payload: Any) -> None:
            answer = chat.run(chat.client.call("message", payload))
            error = expected_message_answer(payload)
            if error is not None:
                assert answer == error
            else:
                assert_ok_ack(answer)
                sent = first_argument(payload)["content"]
                for who in (chat.client, chat.observer):
                    msg = chat.run(who.wait_for("message",
                                                lambda d: d["id"] == answer["message_id"]))
                    assert_delivered_content(sent, msg["content"])
            chat.assert_still_up()

        send()
        assert {e for e, _ in chat.run(chat.observer.barrier())} <= {"authenticated", "message"}


def test_set_display_name_barrage() -> None:
    """Any display-name payload gets the ack or the documented error; the connection stays up."""
    with running_chat() as chat:

        @BARRAGE
        @given(payload=payloads("display_name"))
        def rename(payload: Any) -> None:
            answer = chat.run(chat.client.call("set_display_name", payload))
            assert answer in allowed_name_answers(payload)
            if answer.get("status") == "ok":
                ack = chat.run(chat.client.send("my name now"))
                msg = chat.run(chat.observer.wait_for(
                    "message", lambda d: d["id"] == ack["message_id"]))
                assert msg["user"]["display_name"] == answer["display_name"]
            chat.assert_still_up()

        rename()
        seen = {e for e, _ in chat.run(chat.observer.barrier())}
        assert seen <= {"authenticated", "message", "display_name_changed"}


RESERVED_NAMES = st.sampled_from(["disconnect", "connect", "authenticated"])
EVENT_NAMES = st.one_of(
    RESERVED_NAMES, RESERVED_NAMES,
    st.sampled_from(["user_joined", "user_left", "display_name_changed", "connect_error", "*",
                     "", "ping", "__proto__"]),
    st.text(max_size=30),
).filter(lambda name: name not in ("message", "set_display_name"))


def test_reserved_and_unknown_event_barrage() -> None:
    """Events named like reserved or server events, or unknown ones, change nothing."""
    with running_chat() as chat:

        @BARRAGE
        @given(event=EVENT_NAMES, payload=st.one_of(st.none(), payloads("content")))
        def emit(event: str, payload: Any) -> None:
            chat.run(chat.client.emit(event, payload))
            chat.assert_still_up()

        emit()
        # Nobody joined or left: the other connection heard only messages.
        assert {e for e, _ in chat.run(chat.observer.barrier())} <= {"authenticated", "message"}
        assert chat.client.named("authenticated") == [chat.client.authenticated]


# The HTTP endpoint

def expected_statuses(body: bytes) -> set[int]:
    """The statuses the protocol allows for POSTing ``body``, with Alice alone allowed in."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {400}
    if not isinstance(data, dict) or not isinstance(data.get("email"), str):
        return {400}
    email = data["email"].strip().lower()
    if (len(email) > 255 or not EMAIL_RULE.match(email)
            or len(email.split("@", 1)[0]) > 64):
        return {400}
    return {200, 429} if email == ALICE else {403}


EMAILS = st.one_of(
    st.emails(), TEXT, st.sampled_from([ALICE, " ALICE@Example.com ", "alice@example.com\n",
                                        "bob@example.com", "a" * 65 + "@example.com"]),
)
JSON_BODIES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["email", "Email", "e", ""]) | st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda e: json.dumps({"email": e}).encode(), EMAILS),
    JSON_BODIES.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),  # deep nesting
)


JSON = {"Content-Type": "application/json"}  # any other type is refused (415) before the body


def test_request_magic_link_barrage() -> None:
    """Any request body sent as JSON gets 200, 400, 403 or 429 as documented, with problem
    JSON; never 500."""
    loop = asyncio.new_event_loop()
    try:
        server = LocalServer(allowed_emails=frozenset({ALICE}))

        def run(coro: Coroutine[Any, Any, T]) -> T:
            return loop.run_until_complete(asyncio.wait_for(coro, 15))

        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

        run(server.__aenter__())
        http = run(open_session())
        url = server.url + "/auth/request-magic-link"

        async def post(body: bytes) -> tuple[int, str]:
            async with http.post(url, data=body, headers=JSON) as resp:
                return resp.status, await resp.text()

        try:
            @BARRAGE
            @given(body=BODIES)
            def request(body: bytes) -> None:
                status, text = run(post(body))
                assert status in expected_statuses(body), text
                answer = json.loads(text)
                if status == 200:
                    assert link_sent(answer) == OK_BODY
                else:
                    assert set(answer) == PROBLEM_KEYS and answer["status"] == status
                    assert isinstance(answer["detail"], str) and answer["detail"]

            request()

            async def healthz() -> int:
                async with http.get(server.url + "/healthz") as resp:
                    return resp.status

            assert run(healthz()) == 200
        finally:
            run(http.close())
            run(server.__aexit__(None, None, None))
    finally:
        close_loop(loop)
