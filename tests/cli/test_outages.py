"""The terminal through outages: a real ``roomz-server`` killed and started again, and
``roomz-cli`` in a pseudo-terminal, read from its screen (a terminal emulator) as a person
would.

It never gives up and never misleads: while the server is away the toolbar says
"reconnecting (attempt N, next in S s)", it comes back by itself, and it never says "not
signed in" while it holds a session, unless the server refuses that session. Backoff caps
are small (``--reconnect-max-delay``) so that outages can be short, except in the one test
that runs past the window of the old attempt limit in real time.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import pytest

from roomz.session_cache import SessionCache
from tests.bots.headless import end_sessions
from tests.server.proc import RestartableServer, ServerProcess

from .helpers import CLOCK, CTRL_D, EMAIL, cli_env, spawn_cli, write_config
from .screen import Screen

#: The toolbar while the server is away; "trying now" while an attempt is under way.
RECONNECTING = r"reconnecting \(attempt (?P<attempt>\d+), (next in (?P<next>\d+) s|trying now)\)"
NOT_SIGNED_IN = r"(?i)not signed in"
#: For a step that connects, signs in or stops a bot: several seconds on a busy machine.
SLOW = 25.0
WIDE = 200


def with_cached_session(tmp_path: Path, url: str, session: str) -> None:
    """Keep ``session`` where roomz-cli (run with ``cli_env(tmp_path)``) looks for it."""
    cache = Path(cli_env(tmp_path)["XDG_CACHE_HOME"]) / "roomz" / "session.json"
    SessionCache(cache).save(url, session)


def terminal(tmp_path: Path, screens: list[Screen], url: str, *args: str) -> Screen:
    """``roomz-cli -s url ARGS`` on a screen wide enough for every line it shows."""
    screen = Screen(spawn_cli(tmp_path, "-s", url, *args, columns=WIDE), columns=WIDE)
    screens.append(screen)
    return screen


def toolbar_while_away(screen: Screen, url: str) -> re.Match[str]:
    """The toolbar says the terminal is reconnecting, and as whom."""
    found = re.fullmatch(rf" {RECONNECTING} · (?P<who>[^·]+) · {re.escape(url)} · 0 bot\(s\) "
                         r"running", screen.toolbar)
    assert found, screen.text
    return found


def quit_cleanly(screen: Screen) -> None:
    """Ctrl-D at the prompt: exit status 0."""
    screen.type(CTRL_D)
    assert screen.ended() == 0


@pytest.mark.skipif(not os.environ.get("ROOMZ_LONG_OUTAGES"),
                    reason="about 45 s: ./dev outages runs it (the runner's 35 s one runs here)")
async def test_after_an_outage_past_the_old_window_it_is_back_by_itself(
        restartable: RestartableServer, tmp_path: Path, screens: list[Screen]) -> None:
    """The server is killed for 35 s of real time (longer than the ~31 s that five attempts
    at the old default delays lasted; the terminal used to stop after ten): the toolbar counts
    the attempts, a line typed meanwhile is shown with why it did not go, and once the server
    is back the terminal is too, by itself, and chats. It never said "not signed in".
    About 45 s in all: ``./dev outages`` runs it; the default run has the bot runner's."""
    proc = await restartable.start()
    with_cached_session(tmp_path, restartable.url, await proc.sign_in(EMAIL))
    screen = terminal(tmp_path, screens, restartable.url, "--reconnect-max-delay", "2")
    screen.wait_for(f"Connected to {re.escape(restartable.url)} as {EMAIL}")

    await proc.kill()
    screen.wait_for(f"Connection to {re.escape(restartable.url)} lost; reconnecting by itself")
    away = time.monotonic()
    while time.monotonic() - away < 35:
        screen.watch(1)
        assert toolbar_while_away(screen, restartable.url)["who"] == EMAIL
    attempt = int(toolbar_while_away(screen, restartable.url)["attempt"])
    assert attempt > 10, screen.text
    screen.type("are you there?\r")
    line = screen.wait_for("Not sent")
    assert re.fullmatch(rf"{CLOCK} Not sent: {RECONNECTING}; /reconnect tries now — are you "
                        r"there\?", line), line

    await restartable.start()
    screen.wait_for(f"Connected to {re.escape(restartable.url)} as {EMAIL}", timeout=15)
    screen.wait_for(rf"^ connected · {EMAIL} · ")
    screen.type("back again\r")
    screen.wait_for(rf"^{CLOCK} {EMAIL}: back again$")
    assert not screen.ever_showed(NOT_SIGNED_IN), screen.text
    quit_cleanly(screen)


async def test_started_while_the_server_is_down_it_connects_when_the_server_comes_up(
        restartable: RestartableServer, tmp_path: Path, screens: list[Screen]) -> None:
    """A cached session, and the server not up yet: one line says the terminal cannot reach
    it and keeps trying; the toolbar counts the attempts for the cached session (never "not
    signed in"); the server starts and the terminal connects by itself."""
    proc = await restartable.start()
    with_cached_session(tmp_path, restartable.url, await proc.sign_in(EMAIL))
    await proc.kill()

    screen = terminal(tmp_path, screens, restartable.url, "--reconnect-max-delay", "1")
    line = screen.wait_for("Cannot reach")
    assert re.fullmatch(rf"{CLOCK} Cannot reach {re.escape(restartable.url)}( \([a-z ]+\))?; "
                        r"trying again by itself \(/reconnect tries now\)\.", line), line
    screen.wait_for(RECONNECTING)
    screen.watch(3)
    assert toolbar_while_away(screen, restartable.url)["who"] == "cached session"
    screen.type("too early\r")
    line = screen.wait_for("Not sent")
    assert line.endswith("/reconnect tries now — too early"), line

    await restartable.start()
    screen.wait_for(f"Connected to {re.escape(restartable.url)} as {EMAIL}", timeout=15)
    screen.wait_for(rf"^ connected · {EMAIL} · ")
    assert not screen.ever_showed(NOT_SIGNED_IN), screen.text
    quit_cleanly(screen)


async def test_reconnect_tries_at_once(restartable: RestartableServer, tmp_path: Path,
                                       screens: list[Screen]) -> None:
    """The server comes back while the terminal waits several seconds for its next attempt:
    /reconnect connects at once, well before that attempt was due."""
    proc = await restartable.start()
    with_cached_session(tmp_path, restartable.url, await proc.sign_in(EMAIL))
    await proc.kill()
    screen = terminal(tmp_path, screens, restartable.url, "--reconnect-max-delay", "30")
    deadline = time.monotonic() + 30
    while True:  # the waits double: 1, 2, 4, 8 s...
        screen.watch(0.2)
        shown = re.search(RECONNECTING, screen.toolbar)
        if shown and shown["next"] and int(shown["next"]) >= 5:
            break
        assert time.monotonic() < deadline, screen.text
    await restartable.start()
    asked = time.monotonic()
    screen.type("/reconnect\r")
    screen.wait_for(f"Connected to {re.escape(restartable.url)} as {EMAIL}")
    assert time.monotonic() - asked < 4, "connected only at the attempt that was due"
    assert screen.find("Trying to reach") is not None, screen.text
    quit_cleanly(screen)


async def test_a_session_refused_after_an_outage_is_the_one_not_signed_in(
        restartable: RestartableServer, tmp_path: Path, screens: list[Screen]) -> None:
    """The server comes back with another secret, so the session no longer holds: the
    terminal stops trying and says, in one line, that the server refused the session, why,
    and the fix; only now does the toolbar say "not signed in". /login then works."""
    proc = await restartable.start()
    with_cached_session(tmp_path, restartable.url, await proc.sign_in(EMAIL))
    screen = terminal(tmp_path, screens, restartable.url, "--reconnect-max-delay", "1")
    screen.wait_for("Connected to")
    await proc.kill()
    screen.wait_for(RECONNECTING)
    other = ServerProcess(state_home=tmp_path / "other-state", port=restartable.port,
                          env={"JWT_SECRET_KEY": secrets.token_urlsafe(40)})
    try:
        await other.start()
        line = screen.wait_for("refused your session", timeout=15)
        assert re.fullmatch(rf"{CLOCK} {re.escape(restartable.url)} refused your session "
                            r"\(Not authenticated: [^)]+\)\. Sign in again: /login "
                            r"you@example\.com", line), line
        screen.wait_for(r"^ disconnected · not signed in · ")
        screen.watch(2.5)
        assert re.search(RECONNECTING, screen.toolbar) is None, "still trying a refused session"
        screen.type(f"/login {EMAIL}\r")
        screen.wait_for(f"Sign-in link sent to {re.escape(EMAIL)}")
        screen.wait_for(r"waiting for sign-in \(code [A-Z]{4}-[A-Z]{4}\)")
        quit_cleanly(screen)
    finally:
        await other.kill()


def test_the_terminal_does_not_hang_on_a_server_that_never_answers(
        tmp_path: Path, screens: list[Screen]) -> None:
    """A server that accepts connections and never answers: the terminal stays responsive,
    keeps counting attempts, and Ctrl-D still quits at once."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with_cached_session(tmp_path, url, "a-session")
        screen = terminal(tmp_path, screens, url)
        screen.wait_for(rf"^ connecting · cached session · {re.escape(url)} ")
        screen.type("/help\r")
        screen.wait_for("Commands:")
        started = time.monotonic()
        screen.type(CTRL_D)
        assert screen.ended(timeout=5) == 0
        assert time.monotonic() - started < 5


async def test_hosted_bots_ride_out_an_outage_and_a_refused_session_stops_them(
        restartable: RestartableServer, tmp_path: Path, screens: list[Screen]) -> None:
    """A bot hosted by the terminal: while the server is away /bots says it is reconnecting
    (since when, which attempt, when the next one comes) and the toolbar counts it; it is
    back by itself with the server and answers. When the server later refuses the session,
    one line says the bot stopped and that /login is the fix; /bots says "refused". Signed
    in again, the bot runs again."""
    proc = await restartable.start()
    session = tmp_path / "session.json"
    SessionCache(session).save(restartable.url, await proc.sign_in(EMAIL))
    config = write_config(tmp_path, restartable.url, plugins='["echo"]',
                          extra="reconnect_max_delay = 1\n")
    screen = terminal(tmp_path, screens, restartable.url, "--config", str(config.path),
                      "--reconnect-max-delay", "1")
    screen.wait_for("Bot helper running: help, echo", timeout=SLOW)
    screen.wait_for(r"· 1 bot\(s\) running\s*$")
    screen.type("!echo before\r")
    screen.wait_for(r"HelperBot \(.*\): before$")

    await proc.kill()
    screen.wait_for(r"bot helper lost its connection to .*; reconnecting \(waits grow to 1 s\)")
    screen.wait_for(r"· 0 bot\(s\) running, 1 reconnecting\s*$")
    screen.type("/bots\r")
    line = screen.wait_for("helper: reconnecting since")
    assert re.search(r"helper: reconnecting since \d\d:\d\d:\d\d \((attempt \d+, )?"
                     r"(next in \d+ s|trying now)\); plugins: echo$", line), line

    proc = await restartable.start()
    screen.wait_for("Bot helper is back.", timeout=SLOW)
    screen.wait_for(r"· 1 bot\(s\) running\s*$")
    screen.wait_for(rf"Connected to {re.escape(restartable.url)} as .* again", timeout=SLOW)
    screen.type("!echo after\r")
    screen.wait_for(r"HelperBot \(.*\): after$")

    await end_sessions(EMAIL, restartable)  # the server checks every 5 s
    line = screen.wait_for("bot helper stopped", timeout=SLOW)
    assert line.endswith("bot helper stopped: session ended: all sessions of this user were "
                         f"ended. Sign in again: /login {EMAIL}"), line
    screen.type("/bots\r")
    screen.wait_for(r"helper: refused \(.+\); plugins: echo$")
    screen.wait_for(r"· 0 bot\(s\) running\s*$")

    link = await proc.request_link(EMAIL)  # signed in again: the refused bot starts again
    screen.type(f"/token {link.token}\r")
    screen.wait_for("Bot helper running: help, echo", timeout=SLOW)
    screen.type("!echo signed in again\r")
    screen.wait_for(r"HelperBot \(.*\): signed in again$", timeout=SLOW)
    assert not screen.ever_showed("Traceback"), screen.text
    quit_cleanly(screen)


@pytest.mark.skipif(not os.environ.get("ROOMZ_LONG_OUTAGES"),
                    reason="about 3 min: ./dev outages runs it")
@pytest.mark.timeout(400)
async def test_after_90_s_down_at_the_default_cap_it_is_back_by_itself(
        restartable: RestartableServer, tmp_path: Path, screens: list[Screen]) -> None:
    """The issue's case as a user meets it, nothing made shorter: the default waits (up to a
    minute), the server down 90 s. The toolbar says "reconnecting" with the cached user all
    along, and the terminal is back by the next attempt after the server's return (at most
    75 s later), by itself, and chats. It never said "not signed in"."""
    proc = await restartable.start()
    with_cached_session(tmp_path, restartable.url, await proc.sign_in(EMAIL))
    screen = terminal(tmp_path, screens, restartable.url)
    screen.wait_for(f"Connected to {re.escape(restartable.url)} as {EMAIL}")

    await proc.kill()
    screen.wait_for(f"Connection to {re.escape(restartable.url)} lost; reconnecting by itself")
    away = time.monotonic()
    while time.monotonic() - away < 90:
        screen.watch(1)
        assert toolbar_while_away(screen, restartable.url)["who"] == EMAIL

    await restartable.start()
    line = screen.wait_for(f"Connected to {re.escape(restartable.url)} as {EMAIL} again",
                           timeout=75 + 15)
    assert re.search(r"again, after 1 min \d+ s away$|again, after 2 min( \d+ s)? away$",
                     line), line
    print(line)  # for the record: how long it was away
    screen.type("back after a long while\r")
    screen.wait_for(rf"^{CLOCK} {EMAIL}: back after a long while$")
    assert not screen.ever_showed(NOT_SIGNED_IN), screen.text
    quit_cleanly(screen)
