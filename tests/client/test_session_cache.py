"""The session cache file: private, atomic, per server, and clear about corruption."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from pathlib import Path

import pytest

from roomz import AsyncClient, AuthenticationError, ConnectionState
from roomz.server.local import LocalServer
from tests.events import user_of

from .conftest import ClientFactory, SignedIn
from .helpers import TIMEOUT, silent_server

LOG_IN = re.compile(r"log ?in", re.IGNORECASE)


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def strings_in(value: object) -> list[str]:
    """Every string anywhere in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings_in(v)]]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


async def test_connect_with_token_writes_a_private_cache(
    server: LocalServer, signed_in: SignedIn, tmp_path: Path
) -> None:
    """The session is stored as JSON in a 0600 file inside a directory created 0700."""
    cache = tmp_path / "new-dir" / "sessions.json"
    await signed_in(server, "alice@example.com", session_cache_file=cache)
    assert cache.is_file()
    assert mode(cache) == 0o600
    assert mode(cache.parent) == 0o700
    content = json.loads(cache.read_text())
    assert any(s.count(".") == 2 for s in strings_in(content)), content  # a JWT is in there
    assert [p.name for p in cache.parent.iterdir()] == ["sessions.json"]  # no temporary left


async def test_cached_session_connects_a_new_client_without_a_token(
    server: LocalServer, signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A later client (a later run) connects with only the cache file: same user."""
    cache = str(tmp_path / "sessions.json")  # a str path works as well as a Path
    first = await signed_in(server, "alice@example.com", session_cache_file=cache)
    await asyncio.wait_for(first.disconnect(), TIMEOUT)
    later = make_client(server.url, session_cache_file=cache)
    await asyncio.wait_for(later.connect(), TIMEOUT)
    assert later.connected and later.user == user_of("alice@example.com")


async def test_cache_file_is_replaced_atomically_and_stays_private(
    server: LocalServer, signed_in: SignedIn, tmp_path: Path
) -> None:
    """Saving a session replaces the file by rename (new inode), never rewriting it in place."""
    cache = tmp_path / "sessions.json"
    cache.write_text(json.dumps({"written": "by hand"}))
    os.chmod(cache, 0o644)
    inode = cache.stat().st_ino
    await signed_in(server, "alice@example.com", session_cache_file=cache)
    assert cache.stat().st_ino != inode
    assert mode(cache) == 0o600
    first = cache.read_text()
    inode = cache.stat().st_ino
    await signed_in(server, "alice@example.com", session_cache_file=cache)
    assert cache.stat().st_ino != inode and cache.read_text() != first
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.json"]


async def test_one_cache_file_keeps_one_session_per_server(
    signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """Two servers, one cache file: each later client gets its own server's session."""
    cache = tmp_path / "sessions.json"
    async with LocalServer() as one, LocalServer() as two:
        await signed_in(one, "alice@example.com", session_cache_file=cache)
        await signed_in(two, "bob@example.com", session_cache_file=cache)
        to_one = make_client(one.url, session_cache_file=cache)
        to_two = make_client(two.url, session_cache_file=cache)
        await asyncio.wait_for(to_one.connect(), TIMEOUT)
        await asyncio.wait_for(to_two.connect(), TIMEOUT)
        assert to_one.user == user_of("alice@example.com")
        assert to_two.user == user_of("bob@example.com")
        for client in (to_one, to_two):
            await asyncio.wait_for(client.disconnect(), TIMEOUT)


async def test_session_of_one_server_is_never_sent_to_another(
    server: LocalServer, signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """With only server A's session cached, a client for B says to log in and never contacts B."""
    cache = tmp_path / "sessions.json"
    await signed_in(server, "alice@example.com", session_cache_file=cache)
    async with silent_server() as (other_url, other):
        client = make_client(other_url, session_cache_file=cache, connection_timeout=1.0)
        with pytest.raises(AuthenticationError, match=LOG_IN):
            await asyncio.wait_for(client.connect(), TIMEOUT)
        assert other.connections == 0 and other.received == b""
    async with LocalServer() as other_server:
        client = make_client(other_server.url, session_cache_file=cache)
        with pytest.raises(AuthenticationError, match=LOG_IN):
            await asyncio.wait_for(client.connect(), TIMEOUT)


@pytest.mark.parametrize("content", [
    b"{not json at all",
    b"\xff\xfe\x00 not utf-8",
    b"[1, 2, 3]",
    b'"just a string"',
    b"",
], ids=["broken-json", "not-utf8", "json-list", "json-string", "empty"])
async def test_corrupt_cache_is_a_clear_authentication_error(
    server: LocalServer, make_client: ClientFactory, tmp_path: Path, content: bytes
) -> None:
    """A corrupt cache file: AuthenticationError naming the file and what to do, no other error."""
    cache = tmp_path / "sessions.json"
    cache.write_bytes(content)
    client = make_client(server.url, session_cache_file=cache)
    with pytest.raises(AuthenticationError) as caught:
        await asyncio.wait_for(client.connect(), TIMEOUT)
    message = str(caught.value)
    assert str(cache) in message
    assert LOG_IN.search(message) or "delete" in message
    assert client.connection_state is ConnectionState.DISCONNECTED


def spoil_sessions(value: object) -> object:
    """``value`` with every JWT-looking string replaced by garbage of the same look."""
    if isinstance(value, str) and value.count(".") == 2:
        return "garbage.garbage.garbage"
    if isinstance(value, dict):
        return {k: spoil_sessions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [spoil_sessions(item) for item in value]
    return value


async def test_garbage_cached_session_is_refused_by_the_server(
    server: LocalServer, signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A cached session the server does not accept: AuthenticationError, nothing else."""
    cache = tmp_path / "sessions.json"
    first = await signed_in(server, "alice@example.com", session_cache_file=cache)
    await asyncio.wait_for(first.disconnect(), TIMEOUT)
    spoiled = spoil_sessions(json.loads(cache.read_text()))
    assert "garbage.garbage.garbage" in strings_in(spoiled)
    cache.write_text(json.dumps(spoiled))
    later = make_client(server.url, session_cache_file=cache)
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(later.connect(), TIMEOUT)
    assert later.connection_state is ConnectionState.DISCONNECTED


async def test_unreadable_cache_is_a_clear_authentication_error(
    server: LocalServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A cache path that cannot be read as a file: AuthenticationError naming it."""
    cache = tmp_path / "sessions.json"
    cache.mkdir()  # reading a directory fails even for root, unlike chmod 000
    client = make_client(server.url, session_cache_file=cache)
    with pytest.raises(AuthenticationError) as caught:
        await asyncio.wait_for(client.connect(), TIMEOUT)
    assert str(cache) in str(caught.value)


async def test_fresh_token_replaces_a_corrupt_cache(
    server: LocalServer, signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """Logging in again over a corrupt cache works and leaves a usable cache behind."""
    cache = tmp_path / "sessions.json"
    cache.write_text("{garbage")
    await signed_in(server, "alice@example.com", session_cache_file=cache)
    later = make_client(server.url, session_cache_file=cache)
    await asyncio.wait_for(later.connect(), TIMEOUT)
    assert later.connected


async def test_clear_cached_session_removes_the_file(
    server: LocalServer, signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """clear_cached_session() (the API example) deletes a file holding only that session."""
    cache = tmp_path / "sessions.json"
    client = await signed_in(server, "alice@example.com", session_cache_file=cache)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    client.clear_cached_session()
    assert not cache.exists()
    with pytest.raises(AuthenticationError, match=LOG_IN):
        await asyncio.wait_for(client.connect(), TIMEOUT)
    later = make_client(server.url, session_cache_file=cache)
    with pytest.raises(AuthenticationError, match=LOG_IN):
        await asyncio.wait_for(later.connect(), TIMEOUT)


async def test_clear_cached_session_keeps_other_servers_sessions(
    signed_in: SignedIn, make_client: ClientFactory, tmp_path: Path
) -> None:
    """Clearing one server's session leaves another server's session usable."""
    cache = tmp_path / "sessions.json"
    async with LocalServer() as one, LocalServer() as two:
        first = await signed_in(one, "alice@example.com", session_cache_file=cache)
        await signed_in(two, "bob@example.com", session_cache_file=cache)
        first.clear_cached_session()
        assert cache.exists() and mode(cache) == 0o600
        to_two = make_client(two.url, session_cache_file=cache)
        await asyncio.wait_for(to_two.connect(), TIMEOUT)
        assert to_two.user == user_of("bob@example.com")
        to_one = make_client(one.url, session_cache_file=cache)
        with pytest.raises(AuthenticationError, match=LOG_IN):
            await asyncio.wait_for(to_one.connect(), TIMEOUT)
        await asyncio.wait_for(to_two.disconnect(), TIMEOUT)


async def test_clear_cached_session_without_a_cache_file(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """Without a cache file, clear_cached_session() forgets the in-memory session."""
    client = await signed_in(server, "alice@example.com")
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    client.clear_cached_session()
    with pytest.raises(AuthenticationError, match=LOG_IN):
        await asyncio.wait_for(client.connect(), TIMEOUT)


def test_clear_cached_session_example_when_nothing_is_cached(tmp_path: Path) -> None:
    """The API example ``client.clear_cached_session()`` is harmless with nothing cached."""
    client = AsyncClient("http://localhost:8000", session_cache_file=tmp_path / "none.json")
    client.clear_cached_session()
    assert not (tmp_path / "none.json").exists()
