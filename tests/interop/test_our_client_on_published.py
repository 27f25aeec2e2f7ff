"""Our AsyncClient against the published Roomz 0.4.0 server: the scenario we run against ours."""

from __future__ import annotations

import asyncio
import html
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import (
    AsyncClient,
    AuthenticationError,
    ConnectionError,
    ConnectionState,
    NotSupportedError,
)
from roomz.limits import split_text
from tests.client.helpers import is_iso8601
from tests.events import Events, user_of
from tests.waiting import wait_until

from .published_server import PublishedServer

TIMEOUT = 10.0
EMAILS = ("alice@example.com", "bob@example.com")
FAST = {"reconnect_delay": 0.1, "max_reconnect_attempts": 30, "connection_timeout": 5.0}


@pytest.fixture
async def published(published_python: Path) -> AsyncIterator[PublishedServer]:
    """The published server on a free loopback port."""
    async with PublishedServer(published_python, allowed_emails=EMAILS) as server:
        yield server


Connect = Callable[..., Awaitable[AsyncClient]]


@pytest.fixture
async def our_client() -> AsyncIterator[Connect]:
    """``await our_client(server, url, email, **options)``: our client, logged in and connected."""
    made: list[AsyncClient] = []

    async def connect(server: PublishedServer, url: str, email: str,
                      **options: Any) -> AsyncClient:
        client = AsyncClient(url, **options)
        made.append(client)
        before = len(server.links)
        assert await asyncio.wait_for(client.login(email), TIMEOUT) is True
        link = await server.next_link(email, after=before)
        await asyncio.wait_for(client.connect(token=link.token), TIMEOUT)
        return client

    yield connect
    for client in made:
        await asyncio.wait_for(client.disconnect(), TIMEOUT)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_chat_scenario_on_the_published_server(
    published: PublishedServer, our_client: Connect, host: str
) -> None:
    """Login, connect, two connections, names, messages, joins and leaves, as against ours."""
    url = published.localhost_url if host == "localhost" else published.url
    first = await our_client(published, url, "alice@example.com")
    assert first.connected and first.connection_state is ConnectionState.CONNECTED
    assert first.user == user_of("alice@example.com")
    seen_first = Events(first)

    second = await our_client(published, url, "alice@example.com")
    seen_second = Events(second)
    joined = await seen_first.wait_for("user_joined", timeout=TIMEOUT)
    assert joined["user"] == user_of("alice@example.com")
    assert joined["total_connections"] == 2 and is_iso8601(joined["timestamp"])

    assert await asyncio.wait_for(first.set_display_name("Alice"), TIMEOUT) == {
        "status": "ok", "display_name": "Alice"}
    assert first.user == user_of("alice@example.com", "Alice")
    changed = await seen_second.wait_for("display_name_changed", timeout=TIMEOUT)
    assert changed["display_name"] == "Alice"
    assert changed["user"] == user_of("alice@example.com", "Alice")

    ack = await asyncio.wait_for(first.send("hello <from> our client"), TIMEOUT)
    assert set(ack) == {"status", "message_id", "timestamp"} and ack["status"] == "ok"
    for recorder in (seen_first, seen_second):
        message = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"],
                                          timeout=TIMEOUT)
        assert message["user"] == user_of("alice@example.com", "Alice")
        assert message["content"] == "hello &lt;from&gt; our client"
        assert is_iso8601(message["timestamp"])
    reply = await asyncio.wait_for(second.send("and back"), TIMEOUT)
    for recorder in (seen_first, seen_second):
        message = await recorder.wait_for("message", lambda d: d["id"] == reply["message_id"],
                                          timeout=TIMEOUT)
        assert message["user"] == user_of("alice@example.com")

    assert await asyncio.wait_for(first.send(""), TIMEOUT) == {
        "error": "Missing or invalid 'content' field", "code": 400}
    await asyncio.wait_for(first.set_display_name(None), TIMEOUT)
    cleared = await seen_second.wait_for("display_name_changed",
                                         lambda d: d["display_name"] is None, timeout=TIMEOUT)
    assert cleared["user"]["display_name"] is None

    await asyncio.wait_for(second.disconnect(), TIMEOUT)
    assert seen_second.named("disconnect") == [{}]
    left = await seen_first.wait_for("user_left", timeout=TIMEOUT)
    assert left["remaining_connections"] == 1
    assert left["user"]["email"] == "alice@example.com"
    assert first.connected
    assert Counter(e for e, _ in seen_first.events)["message"] == 2


async def test_the_published_server_cuts_long_messages_in_escaped_form(
    published: PublishedServer, our_client: Connect
) -> None:
    """Unlike ours it never refuses: it escapes, then cuts at 1000 characters, without a
    word (1,200 ``&`` arrive as 200; a 1,103-character line loses its tail). Parts from
    ``split_text`` pass whole."""
    client = await our_client(published, published.url, "alice@example.com")
    seen = Events(client)
    for text, arrives in [("&" * 1200, "&amp;" * 200), ("a" * 1103, "a" * 1000),
                          *[(part, html.escape(part)) for part in split_text("&<" * 700)]]:
        ack = await asyncio.wait_for(client.send(text), TIMEOUT)
        assert ack["status"] == "ok"
        message = await seen.wait_for("message", lambda d, ack=ack: d["id"] == ack["message_id"],
                                      timeout=TIMEOUT)
        assert message["content"] == arrives


async def test_sign_in_errors_from_the_published_server(
    published: PublishedServer, our_client: Connect
) -> None:
    """Its refusals reach the user: login details, an unknown token, a used token."""
    client = AsyncClient(published.url, connection_timeout=5.0)
    with pytest.raises(ConnectionError) as caught:
        await asyncio.wait_for(client.login("mallory@example.com"), TIMEOUT)
    assert caught.value.detail == "This email is not authorized to access this service."
    with pytest.raises(ConnectionError) as caught:
        await asyncio.wait_for(client.login("not-an-email"), TIMEOUT)
    assert caught.value.detail == "Invalid email format. Please enter a valid email address."
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(client.connect("no-such-token"), TIMEOUT)
    link = await published.request_link("bob@example.com")
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    again = AsyncClient(published.url, connection_timeout=5.0)
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(again.connect(link.token), TIMEOUT)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)


async def test_no_sign_in_to_wait_for_on_the_published_server(
    published: PublishedServer,
) -> None:
    """The published server offers no sign-in with its links: no code, and waiting says to
    use the token from the mail; the token then signs in as always."""
    client = AsyncClient(published.url, connection_timeout=5.0)
    before = len(published.links)
    assert await asyncio.wait_for(client.login("bob@example.com"), TIMEOUT) is True
    assert client.sign_in_code is None
    with pytest.raises(ConnectionError, match="token from the mail"):
        await asyncio.wait_for(client.wait_for_sign_in(), TIMEOUT)
    link = await published.next_link("bob@example.com", after=before)
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    assert client.connected
    await asyncio.wait_for(client.disconnect(), TIMEOUT)


async def test_cached_session_on_the_published_server(
    published: PublishedServer, tmp_path: Path
) -> None:
    """A session cached from one run connects the next run without a token."""
    cache = tmp_path / "sessions.json"
    link = await published.request_link("bob@example.com")
    first = AsyncClient(published.url, session_cache_file=cache)
    await asyncio.wait_for(first.connect(token=link.token), TIMEOUT)
    await asyncio.wait_for(first.disconnect(), TIMEOUT)
    later = AsyncClient(published.url, session_cache_file=cache)
    await asyncio.wait_for(later.connect(), TIMEOUT)
    try:
        assert later.connected and later.user == user_of("bob@example.com")
        ack = await asyncio.wait_for(later.send("from the cache"), TIMEOUT)
        assert ack["status"] == "ok"
    finally:
        await asyncio.wait_for(later.disconnect(), TIMEOUT)


async def test_refused_session_on_the_published_server(
    published: PublishedServer, tmp_path: Path
) -> None:
    """Restarted with a new secret, it refuses the cached session: AuthenticationError."""
    cache = tmp_path / "sessions.json"
    link = await published.request_link("bob@example.com")
    first = AsyncClient(published.url, session_cache_file=cache, reconnect=False)
    await asyncio.wait_for(first.connect(token=link.token), TIMEOUT)
    await asyncio.wait_for(first.disconnect(), TIMEOUT)
    await published.kill()
    published.secret = "another-secret-of-forty-characters-long!"
    await published.start()
    later = AsyncClient(published.url, session_cache_file=cache)
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(later.connect(), TIMEOUT)
    assert later.connection_state is ConnectionState.DISCONNECTED


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_reconnect_after_the_published_server_is_killed_and_restarted(
    published: PublishedServer, our_client: Connect, host: str
) -> None:
    """SIGKILL and a restart with the same secret: reconnected, name re-applied, nothing twice."""
    url = published.localhost_url if host == "localhost" else published.url
    client = await our_client(published, url, "alice@example.com", **FAST)
    other = await our_client(published, url, "alice@example.com", **FAST)
    recorder, seen_by_other = Events(client), Events(other)
    await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
    await seen_by_other.wait_for("display_name_changed", timeout=TIMEOUT)

    await published.kill()
    await recorder.wait_for("disconnect", timeout=TIMEOUT)
    await wait_until(lambda: client.connection_state is ConnectionState.RECONNECTING,
                     TIMEOUT, "RECONNECTING")
    await published.start()
    await wait_until(lambda: client.connected and other.connected, 15, "both to reconnect")
    assert client.user == user_of("alice@example.com", "Alice")

    ack = await asyncio.wait_for(client.send("after the restart"), TIMEOUT)
    assert ack["status"] == "ok"
    message = await seen_by_other.wait_for("message", lambda d: d["id"] == ack["message_id"],
                                           timeout=TIMEOUT)
    assert message["user"] == user_of("alice@example.com", "Alice")
    await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"], timeout=TIMEOUT)
    counts = Counter(e for e, _ in recorder.events)
    assert counts["authenticated"] == 1 and counts["disconnect"] == 1
    assert counts["message"] == 1 and counts["error"] == 0


async def test_on_the_published_server_there_is_no_replay_and_the_log_says_so_once(
    published: PublishedServer, our_client: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """The published server keeps no history: our client connects and chats as before,
    ``history()`` is empty, and the log says once that nothing missed will be replayed."""
    caplog.set_level("INFO", "roomz.client")
    alice = await our_client(published, published.url, "alice@example.com", **FAST)
    seen = Events(alice)
    ack = await asyncio.wait_for(alice.send("hello"), TIMEOUT)
    message = await seen.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert "replayed" not in message and alice.cursor is None
    assert await asyncio.wait_for(alice.history(10), TIMEOUT) == []
    second = await our_client(published, published.url, "alice@example.com", **FAST)
    assert second.connected
    said = [r for r in caplog.records if "keeps no message history" in r.getMessage()]
    assert len(said) == 2, said  # once per client


async def test_rich_messages_on_the_published_server(published: PublishedServer,
                                                     our_client: Connect) -> None:
    """The published server has no extensions: send() with a content type delivers the text
    (the field dropped); ask(), poll(), answer() and who() raise NotSupportedError saying
    so, before anything is sent."""
    client = await our_client(published, published.url, "alice@example.com")
    seen = Events(client)
    assert not client.supports("questions")
    ack = await asyncio.wait_for(client.send("# Title", content_type="text/markdown",
                                             subject="S"), TIMEOUT)
    assert ack["status"] == "ok"
    message = await seen.wait_for("message", lambda d: d["id"] == ack["message_id"],
                                  timeout=TIMEOUT)
    assert message["content"] == "# Title" and "content_type" not in message
    for call in (client.ask("Deploy?", ["yes", "no"], timeout=5),
                 client.poll("Lunch?", ["a", "b"]), client.answer("some-id", "1"),
                 client.who()):
        with pytest.raises(NotSupportedError, match=(
                f"the server at {published.url} does not support (questions|listing "
                "connections) \\(an extension of roomz-server; the published 0.4.0 server "
                "lacks it\\)")):
            await call
    assert Counter(e for e, _ in seen.events)["message"] == 1


async def test_a_keyed_send_on_the_published_server(published: PublishedServer,
                                                    our_client: Connect) -> None:
    """The published server offers no send_once: send(key=) goes as send(content) (the
    key left out; the published server would ignore it anyway, reading only 'content'),
    and each send is a message of its own."""
    client = await our_client(published, published.url, "alice@example.com")
    seen = Events(client)
    assert not client.supports("send_once")
    acks = [await asyncio.wait_for(client.send("keyed", key="k-1"), TIMEOUT)
            for _ in range(2)]
    assert all(ack["status"] == "ok" and "duplicate" not in ack for ack in acks)
    await seen.wait_for("message", lambda d: d["id"] == acks[1]["message_id"],
                        timeout=TIMEOUT)
    assert [m["content"] for m in seen.named("message")] == ["keyed", "keyed"]
