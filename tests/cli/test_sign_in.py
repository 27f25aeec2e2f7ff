"""Signing in from the terminal: /login, /token, the cached session, /logout, leaving."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from roomz import ConnectionState
from roomz.server.testing import LocalServer
from roomz.session_cache import SessionCache

from .helpers import CTRL_D, TIMEOUT, connect_other, open_terminal, style_of, text_of

EMAIL = "alice@example.com"


async def test_without_a_session_it_says_how_to_sign_in(server: LocalServer,
                                                         tmp_path: Path) -> None:
    """No cached session: one line tells the user to /login and then /token."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.wait_for("Not signed in")
        assert "/login" in text_of(line) and "/token" in text_of(line)
        assert "not signed in" in term.toolbar()
        assert "disconnected" in term.toolbar()


async def test_login_then_token_connects(server: LocalServer, tmp_path: Path) -> None:
    """/login sends a link, /token redeems it: 'Connected to URL as email'; the session is kept."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.command(f"/login {EMAIL}", "Sign-in link sent")
        assert f"Sign-in link sent to {EMAIL}" in text_of(line)
        link = await server.next_link(EMAIL)
        line = await term.command(f"/token {link.token}", "Connected to")
        assert text_of(line).endswith(f"Connected to {server.url} as {EMAIL}")
        assert term.app.client.connected
        assert SessionCache(tmp_path / "session.json").load(server.url) is not None
        assert await term.exit_status("/quit\r") == 0


async def test_toolbar_shows_state_user_server_and_bots(server: LocalServer,
                                                        tmp_path: Path) -> None:
    """The bottom toolbar: connection state, email and display name, server, bots running."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.wait_for("Not signed in")
        before = term.toolbar()
        assert "disconnected" in before and server.url in before and "0 bot(s)" in before
        await term.sign_in(server, EMAIL)
        await term.command("/name Alice", "You are now")
        toolbar = term.toolbar()
        assert "connected" in toolbar and "disconnected" not in toolbar
        assert f"Alice ({EMAIL})" in toolbar
        assert server.url in toolbar
        assert "0 bot(s) running" in toolbar


async def test_login_with_an_email_the_server_refuses_shows_its_detail(tmp_path: Path) -> None:
    """/login for an email not allowed shows the server's own 'not authorized' detail."""
    async with LocalServer(allowed_emails=frozenset({EMAIL})) as server, \
            open_terminal(server.url, tmp_path) as term:
        line = await term.command("/login mallory@example.com", "Login failed")
        assert "This email is not authorized to access this service." in text_of(line)
        assert style_of(line, "Login failed") == "class:error"
        assert server.links == []


async def test_token_that_is_not_valid_is_an_error_line(server: LocalServer,
                                                        tmp_path: Path) -> None:
    """/token with a made-up token says the sign-in failed, and the terminal keeps running."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.command("/token not-a-real-token", "Sign-in failed")
        assert "unknown, expired or already used" in text_of(line)
        assert not term.app.client.connected
        assert await term.exit_status(CTRL_D) == 0


async def test_cached_session_is_resumed_on_start(server: LocalServer, tmp_path: Path) -> None:
    """A session in the cache file: the terminal connects on start without any command."""
    session_file = tmp_path / "cached.json"
    SessionCache(session_file).save(server.url, await server.sign_in(EMAIL))
    async with open_terminal(server.url, tmp_path, session_file=session_file) as term:
        line = await term.wait_for("Connected to")
        assert re.fullmatch(rf"\d\d:\d\d:\d\d Connected to {re.escape(server.url)} as {EMAIL}",
                            text_of(line))
        assert term.find("Not signed in") is None
        assert term.app.client.connection_state is ConnectionState.CONNECTED


async def test_unreachable_server_is_said(tmp_path: Path) -> None:
    """A cached session for a server that is not running: an error line, not a crash."""
    async with LocalServer() as gone:
        url = gone.url
        SessionCache(tmp_path / "session.json").save(url, await gone.sign_in(EMAIL))
    async with open_terminal(url, tmp_path) as term:
        line = await term.wait_for("Cannot reach")
        assert url in text_of(line)
        assert style_of(line, "Cannot reach") == "class:error"
        assert await term.exit_status(CTRL_D) == 0


async def test_logout_disconnects_and_forgets_the_session(server: LocalServer,
                                                          tmp_path: Path) -> None:
    """/logout: disconnected, the cache file no longer holds the session, sending says sign in."""
    other = await connect_other(server, EMAIL)
    left = asyncio.Event()
    other.on("user_left", lambda data: left.set())
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            await term.command("/logout", "Logged out")
            await asyncio.wait_for(left.wait(), TIMEOUT)
            assert term.app.client.connection_state is ConnectionState.DISCONNECTED
            assert SessionCache(tmp_path / "session.json").load(server.url) is None
            assert "not signed in" in term.toolbar()
            await term.command("hello?", "Not signed in")
    finally:
        await other.disconnect()
    async with open_terminal(server.url, tmp_path) as again:
        await again.wait_for("Not signed in")


async def test_quit_closes_the_connection_and_returns_0(server: LocalServer,
                                                        tmp_path: Path) -> None:
    """/quit: run() returns 0, the connection is closed (another connection sees it leave)."""
    other = await connect_other(server, EMAIL)
    left = asyncio.Event()
    other.on("user_left", lambda data: left.set())
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            assert await term.exit_status("/quit\r") == 0
            await asyncio.wait_for(left.wait(), TIMEOUT)
            assert term.app.client.connection_state is ConnectionState.DISCONNECTED
    finally:
        await other.disconnect()


async def test_ctrl_d_quits_cleanly(server: LocalServer, tmp_path: Path) -> None:
    """Ctrl-D on an empty line: run() returns 0 and the client is disconnected."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        assert await term.exit_status(CTRL_D) == 0
        assert term.app.client.connection_state is ConnectionState.DISCONNECTED
