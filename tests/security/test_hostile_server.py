"""A hostile server against our client and terminal: events and answers of the wrong shape.

The server is real (python-socketio on aiohttp, on loopback; see ``hostile_server.py``). It signs
anyone in and then sends every documented event in shapes docs/protocol.md does not allow,
and events under the names python-socketio keeps for the connection's own life cycle
(``connect``, ``disconnect``...). The client drops each such event, logs it once per kind,
never lets it reach a handler or leak a task exception, and stays connected; a malformed
``authenticated`` fails ``connect()`` at once; ``roomz-cli`` shows one-line notices and
still quits when asked.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
import socketio

from roomz import AsyncClient, ConnectionError, ConnectionState, SyncClient
from roomz.wire import event_problem
from tests.cli.helpers import at_prompt, expect_answering
from tests.events import Events
from tests.waiting import wait_until

from .hostile_server import (
    GREETING,
    KINDS,
    RESERVED,
    SENTINEL,
    WRONG_SHAPES,
    HostileServer,
    hostile_server,
    message,
)

TIMEOUT = 5.0
SLOW = 30.0  # a connection_timeout that a test must never wait out

BAD_GREETINGS = [
    pytest.param("hello", id="a-string"),
    pytest.param(None, id="no-argument"),
    pytest.param((GREETING, GREETING), id="two-arguments"),
    pytest.param({**GREETING, "user": "alice"}, id="user-not-an-object"),
    pytest.param({**GREETING, "user": {"id": "user:a", "email": 1}}, id="email-not-a-string"),
    pytest.param({k: v for k, v in GREETING.items() if k != "channel"}, id="channel-missing"),
]
BAD_ACKS = [
    pytest.param("ok", id="a-string"),
    pytest.param(None, id="no-argument"),
    pytest.param({"status": "ok"}, id="fields-missing"),
    pytest.param({"status": "ok", "message_id": 5, "timestamp": "now"}, id="id-not-a-string"),
    pytest.param({"error": ["no"], "code": 500}, id="error-not-a-string"),
    pytest.param({"status": "maybe"}, id="neither-ok-nor-error"),
]


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """The hostile server with its default script: every event in wrong shapes."""
    with hostile_server() as server:
        yield server


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler during the test ("Task exception
    was never retrieved" and the like); collected, not printed."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


def malformed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The client's log lines about malformed data from the server."""
    return [r.getMessage() for r in caplog.records
            if r.name == "roomz.client" and "malformed" in r.getMessage()]


def well_formed(recorder: Events) -> None:
    """Assert every event a handler received has the documented shape."""
    for name, data in recorder.events:
        if name in ("message", "user_joined", "user_left", "authenticated"):
            assert event_problem(name, (data,)) is None, (name, data)


async def connected(url: str, **options: Any) -> AsyncClient:
    """A client signed in to ``url`` (any token will do there)."""
    client = AsyncClient(url, connection_timeout=SLOW, **options)
    await asyncio.wait_for(client.connect("any-token"), TIMEOUT)
    return client


async def test_malformed_events_are_dropped_and_logged_once_per_kind(
    hostile: HostileServer, loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Handlers never see an event of the wrong shape, nor one named like the connection's
    own (``disconnect``...); no task fails; the client stays connected and can send; each
    kind of bad event is one warning line, however many come (the script arrives twice)."""
    caplog.set_level(logging.WARNING, logger="roomz.client")
    client = AsyncClient(hostile.url, connection_timeout=SLOW, reconnect=False)
    recorder = Events(client)
    try:
        await asyncio.wait_for(client.connect("any-token"), TIMEOUT)
        await recorder.wait_for("message", lambda d: d.get("content") == SENTINEL)
        await asyncio.wait_for(client.disconnect(), TIMEOUT)
        await asyncio.wait_for(client.connect("another-token"), TIMEOUT)  # the script again
        await wait_until(lambda: len([d for d in recorder.named("message")
                                      if d.get("content") == SENTINEL]) == 2, TIMEOUT,
                         lambda: f"the second sentinel; got {recorder.events!r}")
        assert client.connection_state is ConnectionState.CONNECTED
        assert (await asyncio.wait_for(client.send("still here"), TIMEOUT))["status"] == "ok"
    finally:
        await asyncio.wait_for(client.disconnect(), TIMEOUT)
    gc.collect()  # a failed task that nobody awaited is reported when it is collected

    well_formed(recorder)
    assert [d["content"] for d in recorder.named("message")] == [SENTINEL, SENTINEL]
    assert recorder.count("user_joined") == recorder.count("user_left") == 0
    assert recorder.count("display_name_changed") == recorder.count("error") == 0
    assert recorder.count("disconnect") == 2  # our own two disconnect() calls
    assert loop_errors == []
    lines = malformed_lines(caplog)
    for kind in KINDS:
        assert len([line for line in lines if f"'{kind}'" in line]) == 1, (kind, lines)
    assert len(lines) == len(KINDS), lines
    assert all("\n" not in line and hostile.url in line for line in lines), lines


@pytest.mark.parametrize("greeting", BAD_GREETINGS)
async def test_malformed_authenticated_fails_connect_at_once(greeting: Any) -> None:
    """connect() raises ConnectionError naming the malformed ``authenticated`` event, long
    before its timeout, and leaves the client disconnected."""
    with hostile_server(greetings=[greeting], script=[]) as server:
        client = AsyncClient(server.url, connection_timeout=SLOW)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="malformed 'authenticated' event") as error:
            await asyncio.wait_for(client.connect("any-token"), TIMEOUT)
        assert time.monotonic() - started < TIMEOUT
        assert "\n" not in str(error.value)
        assert client.connection_state is ConnectionState.DISCONNECTED
        assert client.user is None


async def test_malformed_authenticated_after_a_reconnect_ends_the_connection() -> None:
    """A server that greets well, drops the connection and greets the reconnect badly:
    the client gives up at once with an ``error`` event instead of staying "reconnecting"."""
    with hostile_server(greetings=[GREETING, "hello"], script=[]) as server:
        client = AsyncClient(server.url, connection_timeout=SLOW, reconnect_delay=0.1)
        recorder = Events(client)
        try:
            await asyncio.wait_for(client.connect("any-token"), TIMEOUT)
            server.stop()
            server.start()
            error = await recorder.wait_for("error")
            assert "malformed 'authenticated' event" in error["error"]
            await wait_until(lambda: client.connection_state is ConnectionState.DISCONNECTED,
                             TIMEOUT, "the client to give up")
            assert server.connections == 2
        finally:
            await asyncio.wait_for(client.disconnect(), TIMEOUT)


@pytest.mark.parametrize("ack", BAD_ACKS)
async def test_malformed_acknowledgement_is_an_error_result(
    ack: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """send() and set_display_name() return ``{"error", "code": 502}`` for an answer of the
    wrong shape, logged once; the user's display name is not changed by it."""
    caplog.set_level(logging.WARNING, logger="roomz.client")
    with hostile_server(script=[], ack=ack) as server:
        client = await connected(server.url)
        try:
            results = [await asyncio.wait_for(client.send("hi"), TIMEOUT) for _ in range(3)]
            named = await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
        finally:
            await asyncio.wait_for(client.disconnect(), TIMEOUT)
    for result in [*results, named]:
        assert set(result) == {"error", "code"} and result["code"] == 502, result
        assert "malformed acknowledgement" in result["error"]
    lines = malformed_lines(caplog)
    assert len([line for line in lines if "'message'" in line]) == 1, lines
    assert len([line for line in lines if "'set_display_name'" in line]) == 1, lines


def test_sync_client_drops_malformed_events_and_fails_on_a_malformed_greeting() -> None:
    """SyncClient: the same checks, with handlers in its background thread."""
    with hostile_server() as server:
        client = SyncClient(server.url, connection_timeout=SLOW)
        recorder = Events(client)
        try:
            client.connect("any-token")
            recorder.wait_for_sync("message", lambda d: d.get("content") == SENTINEL)
        finally:
            client.close()
    well_formed(recorder)
    assert [d["content"] for d in recorder.named("message")] == [SENTINEL]

    with hostile_server(greetings=[["not", "an", "object"]], script=[]) as server:
        client = SyncClient(server.url, connection_timeout=SLOW)
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionError, match="malformed 'authenticated' event"):
                client.connect("any-token")
        finally:
            client.close()
        assert time.monotonic() - started < TIMEOUT


# -- roomz-cli, a real process in a pseudo-terminal ------------------------------------------

def calmly(child: pexpect.spawn, pattern: str) -> None:
    """Wait for ``pattern``; fail at once on a traceback or a "Press ENTER" prompt."""
    found = expect_answering(child, pattern, "Traceback", "Press ENTER")
    assert found == 0, f"the terminal showed {child.after!r} after {child.before[-300:]!r}"


def quit_promptly(child: pexpect.spawn) -> str:
    """Type /quit; assert exit status 0 within the timeout; return everything shown."""
    started = time.monotonic()
    child.send("/quit\r")
    expect_answering(child, pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert time.monotonic() - started < TIMEOUT
    return str(child.logfile_read.getvalue())


def test_terminal_against_a_hostile_server_shows_one_line_notices_and_quits(
    tmp_path: Path, children: list[pexpect.spawn],
) -> None:
    """roomz-cli signed in to the hostile server: the sentinel message shows; malformed
    events are at most one notice line per kind; a malformed acknowledgement is one line;
    never a traceback nor "Press ENTER"; /quit exits 0 promptly."""
    with hostile_server(ack={"status": "ok"}) as server:
        child = at_prompt(tmp_path, server.url, children)
        child.send("/token any-token\r")
        calmly(child, "Connected to")
        calmly(child, re.escape(SENTINEL))
        child.send("hello\r")
        calmly(child, r"Not sent: .*malformed acknowledgement")
        shown = quit_promptly(child)
    assert "Traceback" not in shown and "Press ENTER" not in shown, shown
    notices = [line for line in shown.splitlines() if "malformed" in line]
    for kind in [*(f"'{event}' event" for event in KINDS), "acknowledgement of 'message'"]:
        assert len([line for line in notices if kind in line]) <= 1, (kind, notices)
    assert "Not sent" in shown and "reconnecting" not in shown.lower(), shown


def test_terminal_against_a_malformed_greeting_says_so_in_one_line(
    tmp_path: Path, children: list[pexpect.spawn],
) -> None:
    """roomz-cli: /token against a server whose ``authenticated`` is malformed answers with
    one line at once (not after the connection timeout), and /quit exits 0."""
    with hostile_server(greetings=["hello"], script=[]) as server:
        child = at_prompt(tmp_path, server.url, children)
        child.send("/token any-token\r")
        calmly(child, r"Sign-in failed: .*malformed 'authenticated' event")
        shown = quit_promptly(child)
    assert "Traceback" not in shown and "Press ENTER" not in shown, shown


def test_the_script_is_well_formed_apart_from_what_it_means_to_break() -> None:
    """The hostile script's events are each malformed, and its sentinel is not: otherwise the
    tests above would prove nothing."""
    for event, data in WRONG_SHAPES:
        args = () if data is None else data if isinstance(data, tuple) else (data,)
        assert event_problem(event, args) is not None, (event, data)
    assert event_problem("message", (message(SENTINEL),)) is None
    assert event_problem("authenticated", (GREETING,)) is None
    assert {event for event, _ in RESERVED} == set(socketio.AsyncClient.reserved_events)
