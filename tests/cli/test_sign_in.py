"""Signing in from the terminal: /login with its code and the link confirmed in a browser,
/token (which never breaks a working connection), the cached session, refusals, /logout,
leaving."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from roomz import ConnectionState
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from tests.browser import Browser, page_asking_for_the_code

from .helpers import CLOCK, CTRL_D, TIMEOUT, connect_other, open_terminal, style_of, text_of

EMAIL = "alice@example.com"
CODE = r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}"
WAIT = 15.0  # a few sign-in polls, with room for a busy machine



async def code_shown(term: object, server: LocalServer, email: str = EMAIL) -> tuple[str, str]:
    """/login ``email``: the code the terminal shows, and the link the server mailed."""
    before = len(server.links)
    line = await term.command(f"/login {email}", "Sign-in link sent")  # type: ignore[attr-defined]
    found = re.search(rf"enter the code ({CODE}) there", text_of(line))
    assert found, text_of(line)
    return found[1], (await server.next_link(email, after=before)).url


async def test_without_a_session_it_says_how_to_sign_in(server: LocalServer,
                                                         tmp_path: Path) -> None:
    """No cached session: one line tells the user to /login and then /token."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.wait_for("Not signed in")
        assert "/login" in text_of(line) and "/token" in text_of(line)
        assert "not signed in" in term.toolbar()
        assert "disconnected" in term.toolbar()


async def test_login_then_token_connects(server: LocalServer, tmp_path: Path) -> None:
    """/login sends a link and shows the code; /token redeems it: 'Connected to URL as email';
    the session is kept."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.command(f"/login {EMAIL}", "Sign-in link sent")
        assert re.fullmatch(
            rf"{CLOCK} Sign-in link sent to {EMAIL}\. Open it on any device and enter the code "
            rf"{CODE} there, or paste the token: /token TOKEN", text_of(line)), text_of(line)
        link = await server.next_link(EMAIL)
        line = await term.command(f"/token {link.token}", "Connected to")
        assert text_of(line).endswith(f"Connected to {server.url} as {EMAIL}")
        assert term.app.client.connected
        assert SessionCache(tmp_path / "session.json").load(server.url) is not None
        assert "waiting for sign-in" not in term.toolbar()
        assert await term.exit_status("/quit\r") == 0


async def test_the_link_confirmed_in_a_browser_signs_the_waiting_terminal_in(
        server: LocalServer, tmp_path: Path) -> None:
    """/login shows a code; the toolbar says the terminal waits for it. Someone opens the
    link in a browser (a real HTTP client asking for HTML) and enters the code: the terminal
    signs in by itself, says so, and keeps the session for next time."""
    async with open_terminal(server.url, tmp_path) as term:
        code, url = await code_shown(term, server)
        assert f" disconnected · waiting for sign-in (code {code}) · " in term.toolbar()
        async with Browser() as browser:
            page = await page_asking_for_the_code(browser, url)
            done = await browser.submit(page, "Sign the terminal in", code=code.lower())
            assert "Your terminal is signed in" in done.text
        line = await term.wait_for("Signed in as", timeout=WAIT)
        assert text_of(line)[9:] == (f"Signed in as {EMAIL} (the link was confirmed in a "
                                     "browser).")
        assert style_of(line, "Signed in") == "class:good"
        await term.wait_for(f"Connected to {re.escape(server.url)} as {EMAIL}")
        assert term.app.client.connected
        assert term.toolbar().startswith(f" connected · {EMAIL} · ")
        await term.command("hello from the link", ": hello from the link$")
    async with open_terminal(server.url, tmp_path) as again:
        await again.wait_for("Connected to")


async def test_a_token_pasted_while_waiting_signs_in_and_ends_the_wait(
        server: LocalServer, tmp_path: Path) -> None:
    """While waiting for the link, pasting its token still works and ends the wait: no
    "sign-in ended" line afterwards, and the toolbar no longer shows the code."""
    async with open_terminal(server.url, tmp_path) as term:
        await code_shown(term, server)
        link = server.links[-1]
        start = term.mark()
        await term.command(f"/token {link.token}", "Connected to")
        await asyncio.sleep(2.5)  # longer than a poll interval: a wait left over would speak
        assert "waiting for sign-in" not in term.toolbar()
        assert term.find("ended|failed|Cannot", start) is None, term.texts[start:]


async def test_a_mistyped_token_while_waiting_keeps_waiting_for_the_link(
        server: LocalServer, tmp_path: Path) -> None:
    """A mistyped /token while waiting: one line saying so; the wait goes on, and the link
    confirmed in the browser still signs the terminal in."""
    async with open_terminal(server.url, tmp_path) as term:
        code, url = await code_shown(term, server)
        await term.command("/token mistyped", "Sign-in failed")
        assert f"waiting for sign-in (code {code})" in term.toolbar()
        async with Browser() as browser:
            page = await page_asking_for_the_code(browser, url)
            await browser.submit(page, "Sign the terminal in", code=code)
        await term.wait_for("Signed in as", timeout=WAIT)


async def test_a_link_used_to_sign_in_a_browser_ends_the_wait_saying_why(
        server: LocalServer, tmp_path: Path) -> None:
    """Someone presses "Sign in here" on the link's page instead: the terminal stops waiting
    and says, in one line, what happened and the fix (/login for a new link)."""
    async with open_terminal(server.url, tmp_path) as term:
        _, url = await code_shown(term, server)
        async with Browser() as browser:
            page = await page_asking_for_the_code(browser, url)
            await browser.submit(page, "Sign in here")
        line = await term.wait_for("Sign-in by link ended", timeout=WAIT)
        assert text_of(line)[9:] == (
            "Sign-in by link ended: The sign-in link was used to sign in a browser instead. "
            f"Type /login {EMAIL} for a new link to sign in here.")
        assert style_of(line, "Sign-in") == "class:error"
        assert term.toolbar().startswith(" disconnected · not signed in · ")


async def test_a_failed_token_keeps_the_working_connection(server: LocalServer,
                                                           tmp_path: Path) -> None:
    """Connected, then a mistyped /token: one line says so; the connection is the same one
    (no one saw it leave), the toolbar still says connected, and chat goes on."""
    other = await connect_other(server, EMAIL)
    left: list[object] = []
    other.on("user_left", left.append)
    try:
        async with open_terminal(server.url, tmp_path) as term:
            await term.sign_in(server, EMAIL)
            start = term.mark()
            line = await term.command("/token mistyped-token", "Sign-in failed")
            assert text_of(line)[9:] == (
                "Sign-in failed: the token is unknown, expired or already used. Check it, or "
                "/login you@example.com for a new link.")
            assert style_of(line, "Sign-in failed") == "class:error"
            assert term.toolbar().startswith(f" connected · {EMAIL} · ")
            await term.command("still connected", ": still connected$")
            assert len(term.texts[start:]) == 2, term.texts[start:]
            assert left == []
    finally:
        await other.disconnect()


async def test_a_token_while_connected_replaces_the_connection_once_signed_in(
        server: LocalServer, tmp_path: Path) -> None:
    """Connected as Alice, /token of a link for Bob: connected as Bob, Alice's connection
    closed, Bob's session kept; Bob's earlier messages shown, and what he types at once.
    (Bob's earlier messages used to be asked for on Alice's connection as it closed: no
    answer came, and what Bob typed waited 10 s behind them.)"""
    bob_elsewhere = await connect_other(server, "bob@example.com")
    await asyncio.wait_for(bob_elsewhere.send("Bob, earlier"), TIMEOUT)
    await bob_elsewhere.disconnect()
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        alice = term.app.client
        link = await server.request_link("bob@example.com")
        start = term.mark()
        await term.command(f"/token {link.token}", "as bob@example.com")
        await term.until(lambda: alice.connection_state is ConnectionState.DISCONNECTED,
                         "Alice's connection to close")
        assert term.app.client is not alice and term.app.client.connected
        assert term.toolbar().startswith(" connected · bob@example.com · ")
        await term.wait_for(": Bob, earlier$", start=start)
        line = await term.command("I am Bob", ": I am Bob$", timeout=3)
        assert "bob@example.com" in text_of(line)
        assert not [text for text in term.texts[start:] if "not shown" in text]
    async with open_terminal(server.url, tmp_path) as again:
        await again.wait_for("Connected to .* as bob@example.com")


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


async def test_unreachable_server_is_said_and_tried_again(tmp_path: Path) -> None:
    """A cached session for a server that is not running: one line says it cannot be reached
    and that the terminal keeps trying; the toolbar counts the attempts, never "not signed
    in"; the server up again, the terminal connects by itself."""
    gone = LocalServer()
    async with gone:
        url = gone.url
        SessionCache(tmp_path / "session.json").save(url, await gone.sign_in(EMAIL))

    def quick(app: object) -> None:
        app.client.reconnect_delay = 0.1  # type: ignore[attr-defined]
        app.client.reconnect_delay_max = 0.2  # type: ignore[attr-defined]

    async with open_terminal(url, tmp_path, setup=quick) as term:
        line = await term.wait_for("Cannot reach")
        assert re.fullmatch(rf"Cannot reach {re.escape(url)}( \(connection refused\))?; trying "
                            r"again by itself \(/reconnect tries now\)\.", text_of(line)[9:])
        assert style_of(line, "Cannot reach") == "class:warning"
        await term.until(lambda: term.app.client.reconnect_attempt >= 3, "a few attempts")
        assert re.match(r" reconnecting \(attempt \d+, (next in \d s|trying now)\) · cached "
                        "session · ", term.toolbar()), term.toolbar()
        async with gone:  # the same port and secret
            await term.wait_for(f"Connected to {re.escape(url)} as {EMAIL}")
        assert not any("not signed in" in t.lower() for t in term.texts)
        assert await term.exit_status(CTRL_D) == 0


async def test_a_cached_session_the_server_refuses_says_why_and_the_fix(
        server: LocalServer, tmp_path: Path) -> None:
    """The cache holds a session the server refuses: the one case that says "not signed in",
    with the server's reason and the fix."""
    SessionCache(tmp_path / "session.json").save(server.url, "not-a-session")
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.wait_for("refused")
        assert re.fullmatch(rf"{CLOCK} {re.escape(server.url)} refused your session \(Not "
                            r"authenticated: [^)]+\)\. Sign in again: /login you@example\.com",
                            text_of(line)), text_of(line)
        assert style_of(line, "refused") == "class:error"
        assert term.toolbar().startswith(" disconnected · not signed in · ")


async def test_a_session_ended_while_connected_says_so_and_how_to_sign_in(
        server: LocalServer, tmp_path: Path) -> None:
    """The session is logged out elsewhere (POST /auth/logout with it): one line says the
    server ended it and how to sign in again; no reconnection attempts."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, EMAIL)
        session = SessionCache(tmp_path / "session.json").load(server.url)
        start = term.mark()
        async with aiohttp.ClientSession() as http, http.post(
                f"{server.url}/auth/logout", headers={"Cookie": f"session_token={session}"}):
            pass
        line = await term.wait_for("ended your session", start=start)
        assert text_of(line)[9:] == (f"{server.url} ended your session (logged out). Sign in "
                                     "again: /login you@example.com")
        await term.until(lambda: "not signed in" in term.toolbar(), "the toolbar to say so")
        assert term.app.client.reconnect_attempt == 0


async def test_reconnect_when_connected_or_signed_out_says_so(server: LocalServer,
                                                              tmp_path: Path) -> None:
    """/reconnect without a session says how to sign in; connected, it says so."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.wait_for("Not signed in")
        start = term.mark()
        await term.command("/reconnect", "Not signed in")
        await term.sign_in(server, EMAIL)
        line = await term.command("/reconnect", "Already connected")
        assert text_of(line)[9:] == f"Already connected to {server.url}."
        assert term.find("Not sent", start) is None


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
            await term.command("hello?", "Not sent: not signed in")
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
