"""The live connection (PROTOCOL.md section 2): who may connect, channels, messages, names."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import aiohttp
import jwt
import pytest
import socketio

from roomz.server.local import LocalServer
from tests.events import user_of

from .helpers import (
    INVALID_CONTENT,
    INVALID_FORMAT,
    INVALID_NAME,
    REFUSED,
    assert_ok_ack,
    close_client,
    connected,
    cookie_headers,
    is_iso8601_with_zone,
    open_client,
    signed_in,
)

ALICE = "alice@example.com"
BOB = "bob@example.com"


def session_token(secret: str, email: str = ALICE, *, expires_in: int = 3600,
                  version: int = 1) -> str:
    """A session token made by hand, signed with ``secret``."""
    now = int(time.time())
    return jwt.encode({"sub": f"user:{email}", "email": email, "iat": now - 60,
                       "exp": now + expires_in, "channel_token": "c", "ver": version},
                      secret, algorithm="HS256")


async def assert_refused(url: str, token: str | None) -> None:
    """Assert the server refuses a Socket.IO connection carrying ``token``."""
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        client = await open_client(url, token)
        await close_client(client)  # only reached when the server wrongly accepted


# Who may connect

async def test_signed_in_user_connects_and_is_authenticated(server: LocalServer) -> None:
    """A signed-in user's connection is accepted and told who it is and which channel it is on."""
    token = await server.sign_in(ALICE)

    async with connected(server.url, token) as alice:
        payload = await alice.wait_for("authenticated")

    assert set(payload) == {"user", "channel", "server_time", "connection_id", "history",
                            "features"}
    assert payload["features"] == ["content_types", "questions", "who", "send_once"]  # issue 17
    assert payload["user"] == user_of(ALICE)
    assert payload["channel"] == f"user:{ALICE}"
    assert is_iso8601_with_zone(payload["server_time"])
    uuid.UUID(payload["connection_id"])


async def test_cookie_reaches_the_server_over_long_polling_too(server: LocalServer) -> None:
    """A client that starts on HTTP long-polling (the default) is accepted the same way."""
    token = await server.sign_in(ALICE)

    async with connected(server.url, token, transports=["polling", "websocket"]) as alice:
        assert (await alice.wait_for("authenticated"))["user"] == user_of(ALICE)
        assert_ok_ack(await alice.send("hello over polling"))


@pytest.mark.parametrize("token", [None, "garbage", "a.b.c", ""],
                         ids=["no-cookie", "garbage", "not-a-jwt", "empty"])
async def test_connection_without_a_valid_cookie_is_refused(server: LocalServer,
                                                            token: str | None) -> None:
    """A connection without a valid session cookie is refused."""
    await assert_refused(server.url, token)


async def test_connection_with_a_forged_cookie_is_refused(server: LocalServer) -> None:
    """A session token signed with another secret is refused."""
    await assert_refused(server.url, session_token("someone-else's-secret-" * 3))


async def test_connection_with_an_expired_cookie_is_refused(server: LocalServer) -> None:
    """A session token whose expiry has passed is refused."""
    assert server.settings.jwt_secret is not None
    expired = session_token(server.settings.jwt_secret, expires_in=-60)

    await assert_refused(server.url, expired)


async def test_hand_made_token_with_the_server_secret_is_accepted(server: LocalServer) -> None:
    """A token signed with the server's secret is accepted: the refusals are about validity."""
    assert server.settings.jwt_secret is not None

    async with signed_in(server.url, session_token(server.settings.jwt_secret)) as alice:
        assert alice.authenticated["user"] == user_of(ALICE)


async def test_connection_with_a_revoked_cookie_is_refused(server: LocalServer) -> None:
    """After a user's sessions are revoked, their old cookie is refused and a new sign-in works."""
    old = await server.sign_in(ALICE)
    await server.server.sessions.revoke(ALICE)

    await assert_refused(server.url, old)
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        assert alice.authenticated["user"] == user_of(ALICE)


async def test_connection_rechecks_the_allow_list() -> None:
    """A session of an email since removed from the allow-list is refused."""
    allowed = {ALICE}  # a live set: the operator edits the list while running
    async with LocalServer(allowed_emails=allowed) as server:
        token = await server.sign_in(ALICE)
        allowed.discard(ALICE)

        await assert_refused(server.url, token)


async def test_full_server_refuses_until_someone_leaves() -> None:
    """With every slot taken a new connection is refused; once one leaves, a new one gets in."""
    async with LocalServer(max_connections=2) as server:
        alice_token = await server.sign_in(ALICE)
        bob_token = await server.sign_in(BOB)
        async with signed_in(server.url, alice_token) as alice:
            second_alice = await open_client(server.url, alice_token)
            await second_alice.wait_for("authenticated")

            await assert_refused(server.url, bob_token)
            await assert_refused(server.url, alice_token)

            await close_client(second_alice)
            await alice.wait_for("user_left")
            async with signed_in(server.url, bob_token) as bob:
                assert bob.authenticated["user"] == user_of(BOB)


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://evil.example", "null"])
async def test_a_handshake_from_another_origin_is_refused_before_socket_io(
        server: LocalServer, origin: str) -> None:
    """A handshake whose ``Origin`` is not the server's own (a page of another site or
    port) is refused by Engine.IO with a 400 naming the origin (a JSON string), before any Socket.IO
    CONNECT; without ``Origin`` (clients that are not browsers) or with the server's own,
    it opens (docs/protocol.md 3.1). The published server accepts every origin."""
    handshake = server.url + "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(handshake, headers={"Origin": origin}) as resp:
            assert (resp.status, await resp.json(content_type=None)) == (
                400, f"{origin} is not an accepted origin.")
        for accepted in ({}, {"Origin": server.url}):
            async with http.get(handshake, headers=accepted) as resp:
                assert resp.status == 200
                assert (await resp.text()).startswith("0{")  # Engine.IO OPEN


async def test_a_handshake_from_the_public_url_is_accepted_whatever_host_it_names() -> None:
    """A page at the public URL opens Socket.IO even when the request names the host
    without the page's port, as a proxy passing on ``$server_name`` does."""
    page = {"Origin": "http://chat.example.com:8000", "Host": "chat.example.com"}
    async with LocalServer(public_url="http://chat.example.com:8000") as server, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http, \
            http.get(server.url + "/socket.io/?EIO=4&transport=polling", headers=page) as resp:
        assert resp.status == 200, await resp.text()


async def test_client_may_emit_from_its_authenticated_handler(server: LocalServer) -> None:
    """A bot that names itself as soon as it is authenticated gets its answer."""
    token = await server.sign_in(ALICE)
    sio = socketio.AsyncClient(reconnection=False)
    answers: asyncio.Queue[Any] = asyncio.Queue()

    async def on_authenticated(data: Any) -> None:
        await sio.emit("set_display_name", {"display_name": "EchoBot"},
                       callback=answers.put_nowait)

    sio.on("authenticated", on_authenticated)
    await asyncio.wait_for(sio.connect(server.url, headers=cookie_headers(token),
                                       transports=["websocket"], wait_timeout=5), 6)
    try:
        assert await asyncio.wait_for(answers.get(), 5) == {"status": "ok",
                                                            "display_name": "EchoBot"}
    finally:
        await asyncio.wait_for(sio.disconnect(), 5)


async def test_sending_right_after_connecting_reaches_the_sender(server: LocalServer) -> None:
    """A client that sends the moment it is connected is greeted first and gets its message."""
    client = await open_client(server.url, await server.sign_in(ALICE))
    try:
        ack = await client.send("first words")
        assert_ok_ack(ack)
        await client.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert client.events[0][0] == "authenticated"
    finally:
        await close_client(client)


# Joining and leaving

async def test_authenticated_goes_to_the_new_connection_only(server: LocalServer) -> None:
    """When a second connection joins, the first is not sent another authenticated event."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as first, signed_in(server.url, token) as second:
        before = await first.barrier()

        assert [e for e, _ in before].count("authenticated") == 1
        assert first.connection_id != second.connection_id


async def test_user_joined_goes_to_the_others_only(server: LocalServer) -> None:
    """Existing connections hear that another joined, with the count; the newcomer does not."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as first, signed_in(server.url, token) as second:
        joined = await first.wait_for("user_joined")
        assert set(joined) == {"user", "timestamp", "total_connections"}
        assert joined["user"] == user_of(ALICE)
        assert joined["total_connections"] == 2
        assert is_iso8601_with_zone(joined["timestamp"])

        async with signed_in(server.url, token) as third:
            await first.wait_for("user_joined", lambda d: d["total_connections"] == 3)
            # The first join the second connection hears of is the third's, not its own.
            assert (await second.wait_for("user_joined"))["total_connections"] == 3
            assert "user_joined" not in [e for e, _ in await third.barrier()]


async def test_user_left_tells_the_others_who_left(server: LocalServer) -> None:
    """When a named connection closes, the others hear it left, by name, and how many remain."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as stays:
        leaves = await open_client(server.url, token)
        await leaves.wait_for("authenticated")
        assert (await leaves.call("set_display_name", {"display_name": "EchoBot"})) == {
            "status": "ok", "display_name": "EchoBot"}

        await close_client(leaves)
        left = await stays.wait_for("user_left")

    assert set(left) == {"user", "timestamp", "remaining_connections"}
    assert left["user"] == user_of(ALICE, "EchoBot")
    assert left["remaining_connections"] == 1
    assert is_iso8601_with_zone(left["timestamp"])


async def test_remaining_connections_counts_down(server: LocalServer) -> None:
    """Each departure reports how many of the user's connections are still there."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as stays:
        a = await open_client(server.url, token)
        b = await open_client(server.url, token)
        await a.wait_for("authenticated")
        await b.wait_for("authenticated")

        await close_client(a)
        first = await stays.wait_for("user_left")
        seen = len(stays.events)
        await close_client(b)
        second = await stays.wait_for("user_left", start=seen)

    assert first["remaining_connections"] == 2
    assert second["remaining_connections"] == 1


# Messages

async def test_message_reaches_every_connection_of_the_user(server: LocalServer) -> None:
    """A message reaches all of the user's connections, the sender included, with its sender."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as sender, signed_in(server.url, token) as other:
        assert (await sender.call("set_display_name", {"display_name": "Alice"}))["status"] == "ok"

        ack = await sender.send("hello")

        assert_ok_ack(ack)
        for client in (sender, other):
            payload = await client.wait_for("message", lambda d: d["id"] == ack["message_id"])
            assert set(payload) == {"id", "user", "content", "timestamp", "connection_id",
                                    "cursor"}
            assert payload["user"] == user_of(ALICE, "Alice")
            assert payload["content"] == "hello"
            assert payload["timestamp"] == ack["timestamp"]
            assert is_iso8601_with_zone(payload["timestamp"])
            assert payload["connection_id"] == sender.connection_id


async def test_sender_gets_its_message_before_the_acknowledgement(server: LocalServer) -> None:
    """The sender's own copy of a message arrives before the acknowledgement of sending it."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        def on_ack(answer: Any) -> None:
            alice.record("ack", answer)  # recorded in the same stream as events, as it arrives

        await alice.sio.emit("message", {"content": "order matters"}, callback=on_ack)
        ack = await alice.wait_for("ack")

        kinds = [e for e, _ in alice.events if e in ("message", "ack")]
        assert kinds == ["message", "ack"]
        assert alice.named("message")[0]["id"] == ack["message_id"]


async def test_message_content_is_trimmed_and_html_escaped(server: LocalServer) -> None:
    """Sent text arrives trimmed and HTML-escaped, exactly as html.escape would write it."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        ack = await alice.send("  <b>hi</b> & bye \"'\n ")
        msg = await alice.wait_for("message", lambda d: d["id"] == ack["message_id"])

    assert msg["content"] == "&lt;b&gt;hi&lt;/b&gt; &amp; bye &quot;&#x27;"
    assert html.unescape(msg["content"]) == "<b>hi</b> & bye \"'"


@pytest.mark.parametrize("text", [
    "z" * 1000,
    "&" * 1000,
    "<" * 1000,
    "'" * 1000,
    "é" * 999 + "&",
    " " * 10 + "b" * 1000 + "\n" * 10,
], ids=["plain", "ampersands", "angle-brackets", "quotes", "unicode", "padded"])
async def test_1000_typed_characters_arrive_whole_however_many_escape(
    server: LocalServer, text: str
) -> None:
    """The limit counts what was typed, after trimming: 1000 ``&`` arrive as 1000 ``&``."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        ack = await alice.send(text)
        assert_ok_ack(ack)
        msg = await alice.wait_for("message", lambda d: d["id"] == ack["message_id"])

    assert msg["content"] == html.escape(text.strip())
    assert html.unescape(msg["content"]) == text.strip()


@pytest.mark.parametrize(("text", "length"), [
    ("&" * 1200, 1200),
    ("a" * 1103, 1103),
    ("x" * 1001, 1001),
    (" " * 5 + "é" * 1001 + "\n", 1001),
    ("a b\n" * 2500, 9999),
], ids=["ampersands", "a-long-line", "one-over", "padded", "many-lines"])
async def test_message_over_1000_characters_is_refused_and_not_delivered(
    server: LocalServer, text: str, length: int
) -> None:
    """Over the limit: a 400 acknowledgement naming the length and the limit; nobody
    gets any of it, and the connection goes on."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        ack = await alice.send(text)
        assert ack == {"error": f"Message too long: {length} characters, at most 1000",
                       "code": 400}
        for who in (alice, other):
            delivered = [data["content"] for event, data in await who.barrier()
                         if event == "message"]
            assert all(content.startswith("barrier ") for content in delivered), delivered


@pytest.mark.parametrize(("payload", "error"), [
    ("just a string", INVALID_FORMAT),
    (["content", "hi"], INVALID_FORMAT),
    (42, INVALID_FORMAT),
    (None, INVALID_FORMAT),
    ({}, INVALID_CONTENT),
    ({"text": "hi"}, INVALID_CONTENT),
    ({"content": ""}, INVALID_CONTENT),
    ({"content": "   \n\t "}, INVALID_CONTENT),
    ({"content": None}, INVALID_CONTENT),
    ({"content": 42}, INVALID_CONTENT),
    ({"content": ["hi"]}, INVALID_CONTENT),
    ({"content": {"text": "hi"}}, INVALID_CONTENT),
], ids=["string", "list", "int", "no-payload", "empty-object", "no-content",
        "empty", "whitespace-only", "null", "int-content", "list-content", "object-content"])
# Bytes make a binary packet, which closes the connection: tests/security/test_binary_packets.py
async def test_bad_message_gets_the_documented_error(server: LocalServer, payload: Any,
                                                     error: dict[str, Any]) -> None:
    """A malformed message is answered with the documented error and nobody receives it."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        answer = await alice.call("message", payload)

        assert answer == error
        assert alice.named("message") == []
        before = await other.barrier()
        assert "message" not in [e for e, _ in before]


async def test_extra_message_arguments_are_ignored(server: LocalServer) -> None:
    """A message sent with extra arguments is delivered from its first argument."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        ack = await alice.call("message", ({"content": "first"}, "second", 3))

        assert_ok_ack(ack)
        msg = await alice.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert msg["content"] == "first"


# Display names

@pytest.mark.parametrize(("name", "shown"), [
    ("Alice", "Alice"),
    ("  Alice  ", "Alice"),
    ("x" * 50, "x" * 50),
    ("  " + "y" * 50 + "  ", "y" * 50),
    ("Tab\tName", "Tab\tName"),
    ("Zoë 🤖", "Zoë 🤖"),
    ("<b>Bot</b>", "&lt;b&gt;Bot&lt;/b&gt;"),
    (None, None),
    ("", None),
], ids=["plain", "trimmed", "fifty", "fifty-after-trim", "tab", "unicode", "html", "null",
        "empty"])
async def test_set_display_name_is_acknowledged(server: LocalServer, name: str | None,
                                                shown: str | None) -> None:
    """Setting a name is acknowledged with the name as others will see it; null or "" clears it."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        if name is None or name == "":
            await alice.call("set_display_name", {"display_name": "Before"})

        answer = await alice.call("set_display_name", {"display_name": name})

        assert answer == {"status": "ok", "display_name": shown}
        ack = await alice.send("who am I")
        msg = await alice.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert msg["user"] == user_of(ALICE, shown)


@pytest.mark.parametrize("name", [
    "x" * 51, "   ", "two\nlines", "carriage\rreturn", "bell\x07", "nul\x00", "esc\x1b[31m",
    "del\x7f", "next\x85line", "line\u2028separator", 42, ["Alice"], {"first": "Alice"}, True,
    False, 0,  # the published server clears the name for these two (docs/protocol.md 6)
], ids=["fifty-one", "whitespace-only", "newline", "carriage-return", "bell", "nul",
        "escape", "delete", "nel", "line-separator", "int", "list", "object", "true",
        "false", "zero"])
async def test_invalid_display_name_gets_the_documented_error(server: LocalServer,
                                                              name: Any) -> None:
    """An invalid name gets the documented error and leaves the current name unchanged."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        assert (await alice.call("set_display_name", {"display_name": "Alice"}))["status"] == "ok"
        await other.wait_for("display_name_changed")

        answer = await alice.call("set_display_name", {"display_name": name})

        assert answer == INVALID_NAME
        before = await other.barrier()
        assert [e for e, _ in before].count("display_name_changed") == 1
        ack = await alice.send("still Alice")
        msg = await alice.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert msg["user"]["display_name"] == "Alice"


@pytest.mark.parametrize("payload", ["Alice", ["Alice"], 7, None],
                         ids=["string", "list", "int", "no-payload"])
async def test_set_display_name_without_an_object_is_invalid_format(server: LocalServer,
                                                                    payload: Any) -> None:
    """Setting a name with something other than an object is answered "Invalid message format"."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        assert await alice.call("set_display_name", payload) == INVALID_FORMAT


async def test_display_name_changed_goes_to_the_others_only(server: LocalServer) -> None:
    """The user's other connections hear of a new name, with who changed; the changer does not."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as changer, signed_in(server.url, token) as other:
        await changer.call("set_display_name", {"display_name": "EchoBot"})

        changed = await other.wait_for("display_name_changed")
        assert set(changed) == {"user", "timestamp", "connection_id"}
        assert changed["user"] == user_of(ALICE, "EchoBot")
        assert changed["connection_id"] == changer.connection_id
        assert is_iso8601_with_zone(changed["timestamp"])
        assert "display_name_changed" not in [e for e, _ in await changer.barrier()]

        await changer.call("set_display_name", {"display_name": None})
        cleared = await other.wait_for("display_name_changed",
                                       lambda d: d["user"]["display_name"] is None)
        assert cleared["connection_id"] == changer.connection_id


async def test_display_names_are_per_connection(server: LocalServer) -> None:
    """Two connections of one user keep their own names, and a new connection starts unnamed."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as terminal, signed_in(server.url, token) as bot:
        await terminal.call("set_display_name", {"display_name": "Alice"})
        await bot.call("set_display_name", {"display_name": "EchoBot"})

        from_bot = await bot.send("beep")
        msg = await terminal.wait_for("message", lambda d: d["id"] == from_bot["message_id"])
        assert msg["user"]["display_name"] == "EchoBot"

    async with signed_in(server.url, token) as again:
        assert again.authenticated["user"]["display_name"] is None


# Channels

async def test_other_users_see_nothing_of_alices_channel(server: LocalServer) -> None:
    """Another user never receives any of Alice's joins, leaves, names or messages."""
    async with signed_in(server.url, await server.sign_in(BOB)) as bob:
        alice_token = await server.sign_in(ALICE)
        async with signed_in(server.url, alice_token) as alice:
            async with signed_in(server.url, alice_token) as alice_bot:
                await alice_bot.call("set_display_name", {"display_name": "EchoBot"})
                ack = await alice.send("private")
                await alice_bot.wait_for("message", lambda d: d["id"] == ack["message_id"])
            await alice.wait_for("user_left")
            await alice.wait_for("display_name_changed")

            seen_by_bob = await bob.barrier()

    assert [e for e, _ in seen_by_bob] == ["authenticated"]
    assert all(ALICE not in repr(data) for _, data in bob.events)


# Odd client behaviour

async def test_emitting_an_event_named_disconnect_changes_nothing(server: LocalServer) -> None:
    """A client that emits an event called "disconnect" stays connected and can still send."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        await alice.emit("disconnect")
        await alice.emit("disconnect", {"reason": "bye"})

        assert_ok_ack(await alice.send("still here"))
        assert alice.sio.connected
        assert "user_left" not in [e for e, _ in await other.barrier()]


async def test_emitting_an_event_named_connect_changes_nothing(server: LocalServer) -> None:
    """A client that emits "connect" or "authenticated" is not re-announced and can still send."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
        await alice.emit("connect", {"HTTP_COOKIE": "session_token=x"})
        await alice.emit("authenticated", {"user": user_of(BOB)})

        assert_ok_ack(await alice.send("still here"))
        assert [e for e, _ in await alice.barrier()].count("authenticated") == 1
        assert "user_joined" not in [e for e, _ in await other.barrier()]


async def test_unknown_events_are_ignored(server: LocalServer) -> None:
    """Events the server does not know are ignored and the connection keeps working."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        await alice.emit("no_such_event", {"content": "hi"})
        await alice.emit("join_room", "user:bob@example.com")
        await alice.emit("", None)

        assert_ok_ack(await alice.send("still here"))
        assert alice.sio.connected


async def test_server_time_is_close_to_now(server: LocalServer) -> None:
    """The server's clock in authenticated and message timestamps is close to the real time."""
    async with signed_in(server.url, await server.sign_in(ALICE)) as alice:
        ack = await alice.send("what time is it")

    now = datetime.now(timezone.utc)
    for stamp in (alice.authenticated["server_time"], ack["timestamp"]):
        assert abs((now - datetime.fromisoformat(stamp)).total_seconds()) < 60


async def test_no_answer_leaks_between_two_chat_clients(server: LocalServer) -> None:
    """An acknowledgement goes to the connection that asked, not to the user's other ones."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as asker, signed_in(server.url, token) as other:
        ack = await asker.call("set_display_name", {"display_name": "Asker"})
        assert ack == {"status": "ok", "display_name": "Asker"}

        events = await other.barrier()
        assert all(not (isinstance(d, dict) and d.get("status") == "ok") for _, d in events)
