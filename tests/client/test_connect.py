"""``connect()`` and ``disconnect()``: redeeming magic links, sessions, refusals and timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from roomz import (
    AsyncClient,
    AuthenticationError,
    ConnectionError,
    ConnectionState,
    ConnectionStoppedError,
)
from roomz.server.app import Server
from roomz.server.local import LocalServer
from tests.events import Events, user_of
from tests.server.proc import free_port

from .conftest import ClientFactory, SignedIn
from .helpers import (
    TIMEOUT,
    assert_send_ack,
    ends_cleanly,
    is_iso8601,
    python_script,
    silent_server,
    wait_until,
)

LOG_IN = re.compile(r"log ?in", re.IGNORECASE)


async def test_connect_with_a_magic_link_token_signs_in(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """connect(token) returns once authenticated: connected, user and state are set right away."""
    link = await server.request_link("alice@example.com")
    client = make_client(server.url)
    authenticated: list[dict[str, Any]] = []
    client.on("authenticated", authenticated.append)
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    assert client.connected is True
    assert client.connection_state is ConnectionState.CONNECTED
    assert client.user == user_of("alice@example.com")
    assert len(authenticated) == 1
    data = authenticated[0]
    assert data["user"] == user_of("alice@example.com")
    assert data["channel"] == "user:alice@example.com"
    assert is_iso8601(data["server_time"])


async def test_connect_token_keyword_from_the_api_example(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """``await client.connect(token="...")`` (the API's own example) signs in."""
    link = await server.request_link("alice@example.com")
    client = make_client(server.url)
    await asyncio.wait_for(client.connect(token=link.token), TIMEOUT)
    assert client.connected
    assert client.user is not None and client.user["email"] == "alice@example.com"


async def test_connect_uses_the_token_given_to_the_constructor(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """``AsyncClient(url, token)`` then ``connect()`` redeems that token."""
    link = await server.request_link("alice@example.com")
    client = make_client(server.url, link.token)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connected and client.user == user_of("alice@example.com")


async def test_connect_session_token_keyword(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """``connect(session_token=...)``, the documented parameter name, signs in."""
    link = await server.request_link("alice@example.com")
    client = make_client(server.url)
    await asyncio.wait_for(client.connect(session_token=link.token), TIMEOUT)
    assert client.connected


async def test_unknown_token_is_an_authentication_error(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """A token the server never issued: AuthenticationError, and the client stays disconnected."""
    client = make_client(server.url)
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(client.connect("no-such-token"), TIMEOUT)
    assert client.connected is False
    assert client.user is None
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_used_token_is_an_authentication_error(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """A magic link works once: a second client redeeming it gets AuthenticationError."""
    link = await server.request_link("alice@example.com")
    first = make_client(server.url)
    await asyncio.wait_for(first.connect(link.token), TIMEOUT)
    second = make_client(server.url)
    with pytest.raises(AuthenticationError) as caught:
        await asyncio.wait_for(second.connect(link.token), TIMEOUT)
    assert "used" in str(caught.value) or "expired" in str(caught.value)
    assert first.connected and not second.connected


async def test_connect_without_token_or_session_says_to_log_in(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """No token and no session: AuthenticationError telling the user to log in first."""
    client = make_client(server.url)
    with pytest.raises(AuthenticationError, match=LOG_IN):
        await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_connect_to_a_closed_port_is_a_connection_error(
    make_client: ClientFactory
) -> None:
    """Redeeming a token where nothing listens: ConnectionError."""
    client = make_client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.connect("some-token"), TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_reconnect_with_session_to_a_stopped_server_is_a_connection_error(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """Signed in, disconnected, server gone: connect() with the session is a ConnectionError."""
    client = await signed_in(server, "alice@example.com")
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_connect_to_a_server_that_never_answers_times_out(
    make_client: ClientFactory
) -> None:
    """A server that accepts and stays silent: CONNECTING, then ConnectionError in time."""
    async with silent_server() as (url, silent):
        client = make_client(url, connection_timeout=0.5)
        started = time.monotonic()
        task = asyncio.create_task(client.connect("some-token"))
        await wait_until(lambda: client.connection_state is ConnectionState.CONNECTING,
                         what="CONNECTING")
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, TIMEOUT)
        assert time.monotonic() - started < 2.0
        assert client.connection_state is ConnectionState.DISCONNECTED
        assert silent.connections >= 1


async def test_live_connection_to_a_silent_server_times_out(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """With a session, a Socket.IO handshake that never completes: ConnectionError in time."""
    client = await signed_in(server, "alice@example.com", connection_timeout=0.5)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    port = server.port
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    async with silent_server(port) as (_, silent):
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(client.connect(), TIMEOUT)
        assert time.monotonic() - started < 2.0
        assert silent.connections >= 1
        assert b"session_token=" in silent.received  # it was the live handshake that hung
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_revoked_session_is_an_authentication_error(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """The server reached but refusing a revoked session: AuthenticationError with its reason."""
    client = await signed_in(server, "alice@example.com")
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    await server.server.sessions.revoke("alice@example.com")
    with pytest.raises(AuthenticationError) as caught:
        await asyncio.wait_for(client.connect(), TIMEOUT)
    assert "revoked" in str(caught.value)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert not client.connected


async def test_session_from_another_secret_is_an_authentication_error(
    server: LocalServer, signed_in: SignedIn, tmp_path: Path
) -> None:
    """A cached session the server no longer accepts (new secret): AuthenticationError."""
    cache = tmp_path / "sessions.json"
    client = await signed_in(server, "alice@example.com", session_cache_file=cache)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    port = server.port
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    settings = dataclasses.replace(server.settings, port=port, jwt_secret=secrets.token_urlsafe(32))
    async with Server(settings):
        fresh = AsyncClient(server.url, session_cache_file=cache)
        with pytest.raises(AuthenticationError):
            await asyncio.wait_for(fresh.connect(), TIMEOUT)
        assert fresh.connection_state is ConnectionState.DISCONNECTED


async def test_disconnect_then_connect_again_with_the_session(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """After disconnect() the client is disconnected, with no user; connect() signs in again."""
    client = await signed_in(server, "alice@example.com")
    recorder = Events(client)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    assert client.connected is False
    assert client.user is None
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert recorder.named("disconnect") == [{}]
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connected and client.user == user_of("alice@example.com")
    assert_send_ack(await asyncio.wait_for(client.send("back again"), TIMEOUT))


async def test_disconnect_during_connect_stops_it(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """disconnect() while a connect() is under way: connect() raises ConnectionError
    (ConnectionStoppedError) and the client stays disconnected, not connected after all."""
    link = await server.request_link("alice@example.com")
    client = make_client(server.url)
    recorder = Events(client)
    connecting = asyncio.create_task(client.connect(link.token))
    await asyncio.sleep(0)  # a yield, not a wait: connect() is now under way, not done
    assert client.connection_state is ConnectionState.CONNECTING
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    with pytest.raises(ConnectionStoppedError, match="disconnect"):
        await asyncio.wait_for(connecting, TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert client.user is None
    assert recorder.events == []


async def test_disconnect_when_never_connected_is_harmless(make_client: ClientFactory) -> None:
    """disconnect() on a client that never connected returns quietly."""
    client = make_client("http://127.0.0.1:9")
    recorder = Events(client)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert recorder.events == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_ip_address_and_host_name_urls_both_work(
    server: LocalServer, make_client: ClientFactory, host: str
) -> None:
    """login, connect and send work with http://127.0.0.1:PORT and http://localhost:PORT."""
    url = f"http://{host}:{server.port}"
    client = make_client(url)
    before = len(server.links)
    assert await asyncio.wait_for(client.login("alice@example.com"), TIMEOUT) is True
    link = await server.next_link("alice@example.com", after=before)
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    assert client.connected
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    await asyncio.wait_for(client.connect(), TIMEOUT)  # the session works for this host too
    assert_send_ack(await asyncio.wait_for(client.send("hi"), TIMEOUT))


async def test_trailing_slash_in_the_server_url_is_fine(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """``http://host:port/`` works like ``http://host:port``."""
    link = await server.request_link("alice@example.com")
    client = make_client(server.url + "/")
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    assert_send_ack(await asyncio.wait_for(client.send("hi"), TIMEOUT))


async def test_async_context_manager_example(
    server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API.md ``async with AsyncClient(server_url, session_token)`` example runs as written."""
    server_url = server.url
    session_token = (await server.request_link("alice@example.com")).token
    received: list[dict[str, Any]] = []

    def handler(data: dict[str, Any]) -> None:
        received.append(data)

    async def example() -> AsyncClient:
        async with AsyncClient(server_url, session_token) as client:
            client.on("message", handler)
            await client.send("Hello!")
            assert client.connected
            await wait_until(lambda: len(received) == 1, what="the echo of Hello!")
        return client

    client = await asyncio.wait_for(example(), TIMEOUT)
    assert received[0]["content"] == "Hello!"
    assert client.connected is False
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_connect_and_disconnect_examples(
    server: LocalServer, tmp_path: Path
) -> None:
    """The API.md connect examples: with a token, then later with the cached session."""
    client = AsyncClient(server.url, session_cache_file=tmp_path / "cache.json")
    token = (await server.request_link("alice@example.com")).token

    async def example() -> None:
        # Connect with token
        await client.connect(token=token)
        assert client.connected
        await client.disconnect()
        # Or reconnect with cached session
        await client.connect()
        assert client.connected
        await client.disconnect()

    await asyncio.wait_for(example(), TIMEOUT)
    assert not client.connected


LEFT_BEHIND_SCRIPT = """
import asyncio, sys
from roomz import AsyncClient, AuthenticationError
from roomz.session_cache import SessionCache

async def main(url, cache):
    client = AsyncClient(url, session_cache_file=cache)
    assert await client.login("alice@example.com")
    try:
        await client.connect("not-a-token")
    except AuthenticationError:
        print("link refused")
    SessionCache(cache).save(url, "not-a-session")
    try:
        await AsyncClient(url, session_cache_file=cache).connect()
    except AuthenticationError:
        print("session refused")

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_script_that_never_disconnects_leaves_nothing_open(
    server: LocalServer, tmp_path: Path
) -> None:
    """login(), a refused link and a session the server refuses close what they opened: the
    script exits with no "Unclosed client session" for its user to puzzle over."""
    script = await python_script(LEFT_BEHIND_SCRIPT, server.url, str(tmp_path / "session.json"))
    assert await ends_cleanly(script, TIMEOUT) == "link refused\nsession refused\n"
