"""Each way of failing to connect raises its own kind of error, a subclass of the documented
one, so that a program (the terminal, the bot runner) tells them apart without reading the
message. Real server on loopback, real session cache files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roomz import (
    AuthenticationError,
    ConnectionError,
    ConnectionState,
    ConnectionStoppedError,
    NotSignedInError,
    SessionCacheError,
    SessionRefusedError,
    SignInFailedError,
)
from roomz.server.local import LocalServer
from tests.waiting import wait_until

from .conftest import ClientFactory
from .helpers import TIMEOUT, silent_server


async def test_no_session_is_not_signed_in(server: LocalServer, make_client: ClientFactory,
                                           tmp_path: Path) -> None:
    client = make_client(server.url, session_cache_file=tmp_path / "sessions.json")
    with pytest.raises(NotSignedInError, match="not signed in: call login"):
        await asyncio.wait_for(client.connect(), TIMEOUT)


async def test_a_made_up_token_is_a_failed_sign_in(server: LocalServer,
                                                   make_client: ClientFactory) -> None:
    client = make_client(server.url)
    with pytest.raises(SignInFailedError) as failed:
        await asyncio.wait_for(client.connect("made-up-token"), TIMEOUT)
    assert "unknown, expired or already used" in str(failed.value.detail)


async def test_a_session_the_server_will_not_take_is_refused(
        server: LocalServer, make_client: ClientFactory, tmp_path: Path) -> None:
    cache = tmp_path / "sessions.json"
    cache.write_text(f'{{"sessions": {{"{server.url}": {{"session_token": "forged"}}}}}}')
    cache.chmod(0o600)
    client = make_client(server.url, session_cache_file=cache)
    with pytest.raises(SessionRefusedError) as refused:
        await asyncio.wait_for(client.connect(), TIMEOUT)
    assert refused.value.detail


async def test_a_corrupt_session_cache_says_so(server: LocalServer, make_client: ClientFactory,
                                               tmp_path: Path) -> None:
    cache = tmp_path / "sessions.json"
    cache.write_text("{not json")
    cache.chmod(0o600)
    client = make_client(server.url, session_cache_file=cache)
    with pytest.raises(SessionCacheError, match="cannot be read"):
        await asyncio.wait_for(client.connect(), TIMEOUT)


async def test_connecting_stopped_by_disconnect(make_client: ClientFactory) -> None:
    """connect(retry=True) to a server that never answers, ended by disconnect()."""
    async with silent_server() as (url, _):
        client = make_client(url, connection_timeout=0.5, reconnect_delay=0.1)
        connecting = asyncio.create_task(client.connect("some-token", retry=True))
        await wait_until(lambda: client.connection_state is ConnectionState.CONNECTING,
                         what="connect(retry=True) under way")
        await asyncio.wait_for(client.disconnect(), TIMEOUT)
        with pytest.raises(ConnectionStoppedError, match="disconnect\\(\\) was called"):
            await asyncio.wait_for(connecting, TIMEOUT)


def test_each_kind_is_one_of_the_documented_three() -> None:
    assert issubclass(ConnectionStoppedError, ConnectionError)
    for kind in (NotSignedInError, SignInFailedError, SessionRefusedError, SessionCacheError):
        assert issubclass(kind, AuthenticationError)
