"""Outages of any length: a real ``roomz-server`` stopped for a while, then started again.

The client's own reconnection: with ``max_reconnect_attempts=None`` it never gives up, it
says which attempt it is on and when the next one comes, ``reconnect_now()`` cuts a wait
short, ``connect(retry=True)`` waits for a server that is not up yet, and only a session the
server refuses ends the attempts. Backoff caps are small here so that outages can be short,
except in the one test that runs past the old defaults' window in real time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient, AuthenticationError, ConnectionError, ConnectionState
from tests.events import Events, user_of
from tests.server.proc import (
    ROOMZ_SERVER,
    RestartableServer,
    ServerProcess,
    free_port,
    server_env,
)

from .conftest import ClientFactory
from .helpers import (
    TIMEOUT,
    assert_send_ack,
    ends_cleanly,
    python_script,
    stays_true,
    wait_until,
)

ALICE = "alice@example.com"
#: Never give up; first wait 0.2 s, at most 1 s: five attempts are used up in about 3.4 s.
NEVER_GIVE_UP = {"reconnect_delay": 0.2, "reconnect_delay_max": 1.0,
                 "max_reconnect_attempts": None, "connection_timeout": 2.0}


def reconnecting(client: AsyncClient) -> bool:
    """True while the client is RECONNECTING."""
    return client.connection_state is ConnectionState.RECONNECTING


async def watch(client: AsyncClient, seconds: float) -> list[tuple[ConnectionState, int,
                                                                   float | None]]:
    """``(connection_state, reconnect_attempt, next_reconnect_in)`` every 20 ms for ``seconds``."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append((client.connection_state, client.reconnect_attempt,
                        client.next_reconnect_in))
        await asyncio.sleep(0.02)
    return samples


async def connected_client(restartable: RestartableServer, make_client: ClientFactory,
                           **options: Any) -> tuple[ServerProcess, AsyncClient, Events]:
    """A server, and a client of Alice's connected to it (named "Alice"), with its recorder."""
    proc = await restartable.start()
    client = make_client(proc.url, **options)
    recorder = Events(client)
    await asyncio.wait_for(client.connect((await proc.request_link(ALICE)).token), TIMEOUT)
    await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
    return proc, client, recorder


async def assert_back(client: AsyncClient, recorder: Events, timeout: float) -> None:
    """The client came back by itself: connected, named, sending, each event once."""
    await wait_until(lambda: client.connected, timeout, "the client to come back")
    assert client.user == user_of(ALICE, "Alice")
    assert (client.reconnect_attempt, client.next_reconnect_in) == (0, None)
    ack = await asyncio.wait_for(client.send("back"), TIMEOUT)
    assert_send_ack(ack)
    echoed = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert echoed["user"]["display_name"] == "Alice"
    lifecycle = [e for e, _ in recorder.events if e in ("authenticated", "disconnect", "error")]
    assert lifecycle == ["authenticated", "disconnect", "authenticated"]
    ids = [data["id"] for data in recorder.named("message")]
    assert len(ids) == len(set(ids))


async def test_never_gives_up_through_an_outage_longer_than_five_attempts(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """max_reconnect_attempts=None: 8 s down (five attempts would have ended after about
    3.4 s), the attempt number grows, the next one is never more than the cap away, and the
    client is back by itself once the server is."""
    proc, client, recorder = await connected_client(restartable, make_client, **NEVER_GIVE_UP)
    await proc.stop(signal.SIGKILL)
    await wait_until(lambda: reconnecting(client), what="RECONNECTING")
    samples = await watch(client, 8.0)

    assert {state for state, _, _ in samples} == {ConnectionState.RECONNECTING}
    attempts = [attempt for _, attempt, _ in samples]
    assert attempts == sorted(attempts) and attempts[0] >= 1
    assert attempts[-1] > 5, attempts[-1]
    waits = [wait for _, _, wait in samples if wait is not None]
    assert waits and all(0 <= wait <= 1.0 for wait in waits)
    assert max(waits) > 0.7  # the waits grew to the cap (at least 75% of it, after jitter)
    assert recorder.count("error") == 0 and client.user is not None

    # What a handler of the comeback reads: connected, so no attempt is under way any more.
    seen: list[tuple[bool, int]] = []
    client.on("authenticated",
              lambda _: seen.append((client.connected, client.reconnect_attempt)))
    await restartable.start()
    await assert_back(client, recorder, timeout=1.0 + 2.0 + TIMEOUT)
    assert seen == [(True, 0)]


@pytest.mark.skipif(not os.environ.get("ROOMZ_LONG_OUTAGES"),
                    reason="about 40 s: ./dev outages runs it (the bot runner's 35 s outage "
                           "runs by default)")
@pytest.mark.timeout(120)
async def test_back_after_35_s_down_longer_than_the_old_default_window(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """SLOW, on purpose (about 40 s): the server is down 35 s, longer than the old default
    five attempts (1 + 2 + 4 + 8 + 16 s, about 31 s). With the default first delay, a 2 s cap
    and no limit, the client is still trying at the end, then back within seconds."""
    proc, client, recorder = await connected_client(
        restartable, make_client, reconnect_delay=1.0, reconnect_delay_max=2.0,
        max_reconnect_attempts=None)
    await proc.stop(signal.SIGKILL)
    down = time.monotonic()
    await wait_until(lambda: reconnecting(client), what="RECONNECTING")
    await asyncio.sleep(35.0 - (time.monotonic() - down))
    assert reconnecting(client) and recorder.count("error") == 0
    assert client.reconnect_attempt > 5, client.reconnect_attempt
    await restartable.start()
    await assert_back(client, recorder, timeout=2.5 + TIMEOUT)


async def test_reconnect_now_cuts_a_long_wait_short(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """With waits of 15 s or more (cap 60 s), the server back does not bring the client back
    until the wait is over; reconnect_now() brings it back within a second or two."""
    proc, client, recorder = await connected_client(
        restartable, make_client, reconnect_delay=20.0, reconnect_delay_max=60.0,
        max_reconnect_attempts=None, connection_timeout=2.0)
    client.reconnect_now()  # not waiting: nothing happens
    assert client.connected
    await proc.stop(signal.SIGKILL)
    await wait_until(lambda: client.next_reconnect_in is not None, what="the first wait")
    await restartable.start()
    assert await stays_true(lambda: reconnecting(client), 1.0)
    wait = client.next_reconnect_in
    assert wait is not None and 10 < wait <= 25, wait
    assert client.reconnect_attempt == 1

    asked = time.monotonic()
    client.reconnect_now()
    await wait_until(lambda: client.connected, TIMEOUT, "the attempt reconnect_now() asked for")
    assert time.monotonic() - asked < 2.5
    await assert_back(client, recorder, timeout=TIMEOUT)


async def test_connect_with_retry_waits_for_a_server_that_is_down(
    restartable: RestartableServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A program started while the server is down (a cached session): connect(retry=True)
    keeps trying, CONNECTING with the attempt counted, and returns once the server is up."""
    cache = tmp_path / "session.json"
    proc = await restartable.start()
    first = make_client(proc.url, session_cache_file=cache)
    await asyncio.wait_for(first.connect((await proc.request_link(ALICE)).token), TIMEOUT)
    await asyncio.wait_for(first.disconnect(), TIMEOUT)
    await proc.stop(signal.SIGKILL)

    client = make_client(proc.url, session_cache_file=cache, **NEVER_GIVE_UP)
    recorder = Events(client)
    connecting = asyncio.create_task(client.connect(retry=True))
    try:
        await wait_until(lambda: client.reconnect_attempt >= 3, TIMEOUT, "three retries")
        assert not connecting.done()
        assert client.connection_state is ConnectionState.CONNECTING
        assert client.next_reconnect_in is None or 0 <= client.next_reconnect_in <= 1.0
        await restartable.start()
        await asyncio.wait_for(connecting, 1.0 + 2.0 + TIMEOUT)
    finally:
        connecting.cancel()
    assert client.connected and client.user == user_of(ALICE)
    assert (client.reconnect_attempt, client.next_reconnect_in) == (0, None)
    assert_send_ack(await asyncio.wait_for(client.send("up at last"), TIMEOUT))
    assert Counter(e for e, _ in recorder.events)["authenticated"] == 1
    assert recorder.count("error") == 0 and recorder.count("disconnect") == 0


async def test_connect_with_retry_gives_up_after_the_attempts(
    restartable: RestartableServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    """connect(retry=True) with max_reconnect_attempts=2 and no server: ConnectionError after
    three tries (the first and two more), DISCONNECTED; without retry, one try."""
    client = make_client(restartable.url, reconnect_delay=0.1, max_reconnect_attempts=2)
    client.clear_cached_session()
    with pytest.raises(AuthenticationError, match="not signed in"):
        await asyncio.wait_for(client.connect(retry=True), TIMEOUT)  # no session: no retrying

    proc = await restartable.start()
    token = (await proc.request_link(ALICE)).token
    await proc.stop(signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="after 3 tries") as caught:
        await asyncio.wait_for(client.connect(token, retry=True), TIMEOUT)
    assert 0.2 < time.monotonic() - started < 2.5  # waits of about 0.1 s and 0.2 s
    assert "cannot reach" in str(caught.value)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert (client.reconnect_attempt, client.next_reconnect_in) == (0, None)

    proc = await restartable.start()
    await asyncio.wait_for(client.connect((await proc.request_link(ALICE)).token, retry=True),
                           TIMEOUT)
    assert client.connected


async def test_connect_with_retry_raises_at_once_for_a_refused_token(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """A token the server refuses is not worth another try: AuthenticationError at once."""
    await restartable.start()
    client = make_client(restartable.url, **NEVER_GIVE_UP)
    started = time.monotonic()
    with pytest.raises(AuthenticationError, match="sign-in failed"):
        await asyncio.wait_for(client.connect("no-such-token", retry=True), TIMEOUT)
    assert time.monotonic() - started < 1.0
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_disconnect_stops_a_connect_that_retries(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """disconnect() while connect(retry=True) waits: connect() raises ConnectionError at once."""
    proc = await restartable.start()
    token = (await proc.request_link(ALICE)).token
    await proc.stop(signal.SIGKILL)
    client = make_client(proc.url, reconnect_delay=30.0, max_reconnect_attempts=None)
    connecting = asyncio.create_task(client.connect(token, retry=True))
    await wait_until(lambda: client.next_reconnect_in is not None, what="a wait")
    await asyncio.wait_for(client.disconnect(), 1.0)
    with pytest.raises(ConnectionError, match="disconnect"):
        await asyncio.wait_for(connecting, 1.0)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert (client.reconnect_attempt, client.next_reconnect_in) == (0, None)


async def test_disconnect_right_after_reconnect_now_still_stops(
    make_client: ClientFactory,
) -> None:
    """reconnect_now() then disconnect() at once, while no server listens: the attempts stop
    all the same (before Python 3.12, wait_for loses a cancellation that comes just as the
    wait it runs ends)."""
    client = make_client(f"http://127.0.0.1:{free_port()}", "some-token",
                         reconnect_delay=30.0, max_reconnect_attempts=None)
    connecting = asyncio.create_task(client.connect(retry=True))
    for _ in range(3):
        await wait_until(lambda: client.next_reconnect_in is not None, what="a wait")
        client.reconnect_now()
        await asyncio.sleep(0)
        await wait_until(lambda: client.next_reconnect_in is not None, what="the next wait")
    client.reconnect_now()
    await asyncio.wait_for(client.disconnect(), 1.0)
    with pytest.raises(ConnectionError, match="disconnect"):
        await asyncio.wait_for(connecting, 1.0)
    assert client.reconnect_attempt == 0


async def end_sessions(email: str, state_home: Path) -> None:
    """``roomz-server end-sessions EMAIL`` on the records in ``state_home``."""
    process = await asyncio.create_subprocess_exec(
        ROOMZ_SERVER, "end-sessions", email, env=server_env(state_home),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, err.decode()


async def test_a_session_ended_while_away_ends_the_attempts(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """The operator ends Alice's sessions while the server is down: the reconnect is refused,
    handlers get error 401 saying so, DISCONNECTED, and no further attempts."""
    proc, client, recorder = await connected_client(restartable, make_client, **NEVER_GIVE_UP)
    await proc.stop(signal.SIGKILL)
    await wait_until(lambda: reconnecting(client), what="RECONNECTING")
    await end_sessions(ALICE, restartable.state_home)
    await restartable.start()

    error = await recorder.wait_for("error", timeout=1.0 + 2.0 + TIMEOUT)
    assert error == {"error": "the server refused the session: Not authenticated: session "
                              "revoked; sign in again", "code": 401}
    assert client.connection_state is ConnectionState.DISCONNECTED and client.user is None
    # Another attempt would come within the 1 s cap, and make the client RECONNECTING again.
    assert await stays_true(
        lambda: client.connection_state is ConnectionState.DISCONNECTED
        and (client.reconnect_attempt, client.next_reconnect_in) == (0, None), 2.0)
    assert Counter(e for e, _ in recorder.events) == {"authenticated": 1, "disconnect": 1,
                                                      "error": 1}


@pytest.mark.parametrize(("limit", "refusal"), [
    ({"ROOMZ_MAX_CONNECTIONS": "1"}, r"refused alice@example\.com: server full"),
    ({"ROOMZ_MAX_CONNECTIONS_PER_USER": "1"}, r"refused a connection of alice@example\.com"),
])
async def test_a_full_server_is_tried_again(
    restartable: RestartableServer, make_client: ClientFactory,
    limit: dict[str, str], refusal: str
) -> None:
    """Back up, the server is full ("Server full", "too many connections"): not a refused
    session, so the client keeps trying, and gets in once a place is free. Long waits
    (20 s and up), with reconnect_now() making each attempt, keep the order certain."""
    proc, client, recorder = await connected_client(
        restartable, make_client, reconnect_delay=20.0, reconnect_delay_max=60.0,
        max_reconnect_attempts=None, connection_timeout=2.0)
    await proc.stop(signal.SIGKILL)
    await wait_until(lambda: client.next_reconnect_in is not None, what="the first wait")
    full = ServerProcess(state_home=restartable.state_home, port=restartable.port,
                         env={"JWT_SECRET_KEY": restartable.secret, **limit})
    restartable.started.append(full)
    await full.start()
    email = "bob@example.com" if "ROOMZ_MAX_CONNECTIONS" in limit else ALICE
    other = make_client(full.url)
    await asyncio.wait_for(other.connect((await full.request_link(email)).token), TIMEOUT)

    for attempt in (1, 2):
        before = len(full.lines)
        client.reconnect_now()
        await wait_until(lambda n=attempt + 1: client.reconnect_attempt == n
                         and client.next_reconnect_in is not None, TIMEOUT,
                         f"attempt {attempt} to be refused")
        if attempt == 1:  # the server logs a kind of refusal once in a while, not each one
            await full.wait_for_line(refusal, after=before)
        assert reconnecting(client) and recorder.count("error") == 0

    await asyncio.wait_for(other.disconnect(), TIMEOUT)
    client.reconnect_now()
    await assert_back(client, recorder, timeout=TIMEOUT)


STOPPED_SCRIPT = """
import asyncio, sys, time
from roomz import AsyncClient, ConnectionError

async def main(url, token, how):
    client = AsyncClient(url, reconnect_delay=30.0, max_reconnect_attempts=None)
    if how == "reconnecting":
        await client.connect(token)
        print("connected", flush=True)
    else:
        connecting = asyncio.create_task(client.connect(token, retry=True))
    while client.next_reconnect_in is None:  # the server is down: a wait of 22 s or more
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await client.disconnect()
    took = time.monotonic() - started
    if how == "retrying":
        try:
            await connecting
        except ConnectionError as exc:
            print("connect():", exc, flush=True)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print(f"stopped within 1 s: {took < 1.0};", client.connection_state.value, len(left),
          "tasks left", flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("how", ["reconnecting", "retrying"])
async def test_disconnect_while_waiting_leaves_nothing_behind(
    restartable: RestartableServer, how: str
) -> None:
    """A program calls disconnect() while the client waits for its next attempt (after a drop,
    or in connect(retry=True)): it returns at once, no task is left, and the program ends with
    nothing on stderr (no "Task was destroyed", no "Unclosed client session")."""
    proc = await restartable.start()
    token = (await proc.request_link(ALICE)).token
    if how == "retrying":
        await proc.stop(signal.SIGKILL)
    script = await python_script(STOPPED_SCRIPT, proc.url, token, how)
    try:
        if how == "reconnecting":
            assert script.stdout is not None
            assert await asyncio.wait_for(script.stdout.readline(), TIMEOUT) == b"connected\n"
            await proc.stop(signal.SIGKILL)
    except BaseException:
        script.kill()
        await script.wait()
        raise
    out = await ends_cleanly(script, 15)
    said = {"reconnecting": "", "retrying": f"connect(): stopped connecting to {proc.url}: "
                                            "disconnect() was called\n"}[how]
    assert out.endswith(f"{said}stopped within 1 s: True; disconnected 0 tasks left\n"), out
