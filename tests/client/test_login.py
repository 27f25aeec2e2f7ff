"""``login(email)``: True when the server mailed a link, else ConnectionError with its reason."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from roomz import ClientError, ConnectionError
from roomz.server.app import Server
from roomz.server.local import LocalServer
from roomz.server.mail import MagicLink, MailError
from roomz.server.settings import ServerSettings
from tests.server.proc import free_port

from .conftest import ClientFactory
from .helpers import TIMEOUT, silent_server

NOT_ALLOWED = "This email is not authorized to access this service."
INVALID_EMAIL = "Invalid email format. Please enter a valid email address."
MAIL_FAILED = "Failed to send magic link email. Please try again."
RATE_LIMITED = ("Too many requests: this email may get 5 links an hour from one address. "
                "Please wait before requesting another magic link.")


async def test_login_returns_true_and_the_server_mails_a_link(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """login() answers True and the server has sent a magic link to the (normalized) email."""
    client = make_client(server.url)
    assert await asyncio.wait_for(client.login("  Alice@Example.com "), TIMEOUT) is True
    link = await server.next_link("alice@example.com")
    assert link.url.startswith(f"{server.url}/auth/verify?token=")


async def test_login_example_from_the_api_reference(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """The API.md login example runs as written."""
    client = make_client(server.url)
    success = await asyncio.wait_for(client.login("user@example.com"), TIMEOUT)
    # Check email for magic link...
    assert success is True
    assert (await server.next_link("user@example.com")).email == "user@example.com"


async def test_login_not_allowed_raises_with_the_servers_detail(
    make_client: ClientFactory
) -> None:
    """An email off the allow-list: ConnectionError carrying the server's detail for people."""
    async with LocalServer(allowed_emails=frozenset({"alice@example.com"})) as server:
        client = make_client(server.url)
        with pytest.raises(ConnectionError) as caught:
            await asyncio.wait_for(client.login("mallory@example.com"), TIMEOUT)
        assert caught.value.detail == NOT_ALLOWED
        assert NOT_ALLOWED in str(caught.value)
        assert server.links == []
        assert await asyncio.wait_for(client.login("alice@example.com"), TIMEOUT) is True


async def test_login_malformed_email_raises_with_the_servers_detail(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """A malformed email: ConnectionError whose detail and message are the server's words."""
    client = make_client(server.url)
    with pytest.raises(ConnectionError) as caught:
        await asyncio.wait_for(client.login("not-an-email"), TIMEOUT)
    assert caught.value.detail == INVALID_EMAIL
    assert INVALID_EMAIL in str(caught.value)


async def test_login_rate_limited_raises_with_the_servers_detail(
    server: LocalServer, make_client: ClientFactory
) -> None:
    """The sixth request in an hour: ConnectionError saying to wait."""
    client = make_client(server.url)
    for _ in range(5):
        assert await asyncio.wait_for(client.login("bob@example.com"), TIMEOUT) is True
    with pytest.raises(ConnectionError) as caught:
        await asyncio.wait_for(client.login("bob@example.com"), TIMEOUT)
    assert caught.value.detail == RATE_LIMITED
    assert RATE_LIMITED in str(caught.value)
    assert isinstance(caught.value, ClientError)


async def test_login_mail_failure_raises_with_the_servers_detail(
    make_client: ClientFactory
) -> None:
    """The server cannot send the mail (500): ConnectionError with its detail."""
    class BrokenMailer:
        async def send(self, link: MagicLink) -> None:
            raise MailError("the mail server is down")

    settings = ServerSettings(host="127.0.0.1", port=0, jwt_secret=secrets.token_urlsafe(32))
    async with Server(settings, mailer=BrokenMailer()) as server:
        client = make_client(server.url)
        with pytest.raises(ConnectionError) as caught:
            await asyncio.wait_for(client.login("alice@example.com"), TIMEOUT)
    assert caught.value.detail == MAIL_FAILED
    assert MAIL_FAILED in str(caught.value)


async def test_login_to_a_closed_port_is_a_connection_error(make_client: ClientFactory) -> None:
    """Nothing listening: ConnectionError (not aiohttp's or the built-in one)."""
    client = make_client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.login("alice@example.com"), TIMEOUT)


async def test_login_to_a_server_that_never_answers_times_out(make_client: ClientFactory) -> None:
    """A server that accepts and never answers: ConnectionError within connection_timeout."""
    async with silent_server() as (url, silent):
        client = make_client(url, connection_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(client.login("alice@example.com"), TIMEOUT)
        assert time.monotonic() - started < 2.0
        assert silent.connections >= 1
