"""Reconnection: servers killed, stopped and restarted on the same port with the same secret."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from roomz import ConnectionError, ConnectionState
from roomz.server.local import LocalServer
from tests.events import Events, user_of
from tests.server.proc import RestartableServer

from .conftest import ClientFactory, SignedIn
from .helpers import (
    TIMEOUT,
    assert_send_ack,
    ends_cleanly,
    python_script,
    renames_once_server,
    restart_in_process,
    stays_true,
    wait_until,
)

FAST = {"reconnect_delay": 0.1, "max_reconnect_attempts": 20, "connection_timeout": 3.0}


def state_is(client: object, state: ConnectionState) -> bool:
    """True when ``client.connection_state`` is ``state``."""
    return getattr(client, "connection_state") is state  # noqa: B009


async def test_reconnects_after_the_server_process_is_killed_and_restarted(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """SIGKILL: RECONNECTING and disconnect, then CONNECTED and authenticated again, name kept."""
    proc = await restartable.start()
    link = await proc.request_link("alice@example.com")
    client = make_client(proc.url, **FAST)
    recorder = Events(client)
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
    before = await asyncio.wait_for(client.send("before"), TIMEOUT)
    await recorder.wait_for("message", lambda d: d["id"] == before["message_id"])

    await proc.stop(signal.SIGKILL)
    await wait_until(lambda: state_is(client, ConnectionState.RECONNECTING), what="RECONNECTING")
    assert client.connected is False
    assert await recorder.wait_for("disconnect") == {}
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.send("while down"), TIMEOUT)

    await restartable.start()
    await wait_until(lambda: client.connected, 10, "the reconnect")
    assert client.connection_state is ConnectionState.CONNECTED
    assert client.user == user_of("alice@example.com", "Alice")
    after = await asyncio.wait_for(client.send("after"), TIMEOUT)
    assert_send_ack(after)
    echoed = await recorder.wait_for("message", lambda d: d["id"] == after["message_id"])
    assert echoed["user"]["display_name"] == "Alice"

    lifecycle = [e for e, _ in recorder.events if e in ("authenticated", "disconnect", "error")]
    assert lifecycle == ["authenticated", "disconnect", "authenticated"]
    counts = Counter(event for event, _ in recorder.events)
    assert counts["authenticated"] == 2
    assert counts["disconnect"] == 1
    assert counts["error"] == 0
    ids = [data["id"] for data in recorder.named("message")]
    assert ids == [before["message_id"], after["message_id"]]


async def test_other_connection_sees_the_reapplied_name_after_a_kill(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """After a SIGKILL and restart, the user's other connection sees the name on new messages."""
    proc = await restartable.start()
    named = make_client(proc.url, **FAST)
    other = make_client(proc.url, **FAST)
    await asyncio.wait_for(named.connect((await proc.request_link("alice@example.com")).token),
                           TIMEOUT)
    await asyncio.wait_for(other.connect((await proc.request_link("alice@example.com")).token),
                           TIMEOUT)
    await asyncio.wait_for(named.set_display_name("Alice"), TIMEOUT)
    seen = Events(other)
    await proc.stop(signal.SIGKILL)
    await wait_until(lambda: not named.connected and not other.connected, what="the drop")
    await restartable.start()
    await wait_until(lambda: named.connected and other.connected, 10, "both to reconnect")
    ack = await asyncio.wait_for(named.send("who am I?"), TIMEOUT)
    message = await seen.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert message["user"] == user_of("alice@example.com", "Alice")
    assert Counter(e for e, _ in seen.events)["message"] == 1


async def test_reconnects_after_a_graceful_server_shutdown(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """SIGTERM (the server closes every connection) also leads to a reconnect once it is back."""
    proc = await restartable.start()
    client = make_client(proc.url, **FAST)
    recorder = Events(client)
    await asyncio.wait_for(client.connect((await proc.request_link("bob@example.com")).token),
                           TIMEOUT)
    assert await proc.stop(signal.SIGTERM) == 0
    await recorder.wait_for("disconnect")
    assert client.connection_state is ConnectionState.RECONNECTING
    await restartable.start()
    await recorder.wait_for("authenticated", start=1, timeout=10)
    await wait_until(lambda: client.connected, what="CONNECTED")
    assert_send_ack(await asyncio.wait_for(client.send("still here"), TIMEOUT))


async def test_gives_up_when_the_server_stays_down(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """Attempts run out: DISCONNECTED, error 503 once; connect() works when the server is back."""
    proc = await restartable.start()
    client = make_client(proc.url, reconnect_delay=0.1, max_reconnect_attempts=2,
                         connection_timeout=2.0)
    recorder = Events(client)
    await asyncio.wait_for(client.connect((await proc.request_link("alice@example.com")).token),
                           TIMEOUT)
    await proc.stop(signal.SIGKILL)
    lost = time.monotonic()
    error = await recorder.wait_for("error", timeout=10)
    # Two attempts after about 0.1 s and 0.2 s: not at once, and not five slower ones.
    assert 0.2 < time.monotonic() - lost < 2.0
    assert error["code"] == 503 and isinstance(error["error"], str)
    assert set(error) == {"error", "code"}
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert client.connected is False
    assert client.user is None
    assert recorder.named("disconnect") == [{}]

    await restartable.start()
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connected and client.user == user_of("alice@example.com")
    assert_send_ack(await asyncio.wait_for(client.send("back"), TIMEOUT))
    assert recorder.count("error") == 1 and recorder.count("authenticated") == 2


async def test_a_drop_without_reconnection_forgets_the_user(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """reconnect=False and the server goes away: DISCONNECTED at once, and ``user`` is None
    like after disconnect(), not the user of a connection that is over."""
    proc = await restartable.start()
    client = make_client(proc.url, reconnect=False)
    recorder = Events(client)
    await asyncio.wait_for(client.connect((await proc.request_link("alice@example.com")).token),
                           TIMEOUT)
    await proc.stop(signal.SIGKILL)
    await recorder.wait_for("disconnect")
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert client.user is None


async def test_a_failed_connect_while_reconnecting_forgets_the_user(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """connect() called while RECONNECTING replaces the attempts; when it fails, the client
    is DISCONNECTED, and ``user`` is None as after any connection that is over."""
    client = await signed_in(server, "alice@example.com", **FAST)
    await server.stop()
    await wait_until(lambda: state_is(client, ConnectionState.RECONNECTING), what="RECONNECTING")
    assert client.user is not None  # while it tries to get back, the user stays known
    try:
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(client.connect(), TIMEOUT)
        assert client.connection_state is ConnectionState.DISCONNECTED
        assert client.user is None
    finally:
        await server.start()


async def test_an_attempt_that_timed_out_while_the_name_was_reapplied_says_nothing(
    make_client: ClientFactory
) -> None:
    """The server greets each attempt but never acknowledges the name re-applied: each
    attempt times out, and handlers hear no ``authenticated`` of a connection given up,
    only the ``error`` once the attempts ran out."""
    async with renames_once_server() as server:
        client = make_client(server.url, reconnect_delay=0.1, max_reconnect_attempts=2,
                             connection_timeout=0.5)
        await asyncio.wait_for(client.connect("any-token"), TIMEOUT)
        assert (await asyncio.wait_for(client.set_display_name("Slow"), TIMEOUT))["status"] == "ok"
        recorder = Events(client)
        await server.drop()
        error = await recorder.wait_for("error", timeout=TIMEOUT)
        assert error["code"] == 503
        assert [name for name, _ in recorder.events] == ["disconnect", "error"]
        assert client.connection_state is ConnectionState.DISCONNECTED


async def test_explicit_disconnect_never_reconnects(
    restartable: RestartableServer, make_client: ClientFactory
) -> None:
    """After disconnect(), a server restart does not bring the client back; connect() does."""
    proc = await restartable.start()
    client = make_client(proc.url, reconnect_delay=0.05, max_reconnect_attempts=20)
    recorder = Events(client)
    await asyncio.wait_for(client.connect((await proc.request_link("alice@example.com")).token),
                           TIMEOUT)
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED
    await proc.stop(signal.SIGKILL)
    await restartable.start()
    # Reconnection attempts would come every 0.05-0.1 s: a second is ample to see one.
    assert await stays_true(
        lambda: state_is(client, ConnectionState.DISCONNECTED)
        and recorder.count("authenticated") == 1, 1.0)
    assert recorder.named("disconnect") == [{}]

    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.connected
    assert_send_ack(await asyncio.wait_for(client.send("on my own terms"), TIMEOUT))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_reconnects_to_an_in_process_server_restarted_on_the_same_port(
    server: LocalServer, signed_in: SignedIn, host: str
) -> None:
    """LocalServer stopped and a new Server started on its port: the client comes back by itself."""
    url = f"http://{host}:{server.port}"
    client = await signed_in(server, "alice@example.com", url=url, **FAST)
    recorder = Events(client)
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    await recorder.wait_for("disconnect")
    await wait_until(lambda: state_is(client, ConnectionState.RECONNECTING), what="RECONNECTING")
    await restart_in_process(server)
    await recorder.wait_for("authenticated", timeout=10)
    await wait_until(lambda: client.connected, what="CONNECTED")
    assert client.user == user_of("alice@example.com")
    ack = await asyncio.wait_for(client.send("hello again"), TIMEOUT)
    assert_send_ack(ack)
    await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert Counter(e for e, _ in recorder.events) == {"disconnect": 1, "authenticated": 1,
                                                      "message": 1}


async def test_every_connection_of_the_user_reconnects_once(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """Two connections of one user both come back, each authenticated exactly once more."""
    first = await signed_in(server, "alice@example.com", **FAST)
    second = await signed_in(server, "alice@example.com", **FAST)
    recorders = [Events(first), Events(second)]
    await restart_in_process(server)
    await wait_until(lambda: first.connected and second.connected, 10, "both to reconnect")
    ack = await asyncio.wait_for(first.send("to both"), TIMEOUT)
    for recorder in recorders:
        await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    second_ack = await asyncio.wait_for(second.send("and back"), TIMEOUT)
    for recorder in recorders:
        await recorder.wait_for("message", lambda d: d["id"] == second_ack["message_id"])
        counts = Counter(e for e, _ in recorder.events)
        assert counts["authenticated"] == 1 and counts["disconnect"] == 1
        assert counts["message"] == 2


async def test_disconnect_while_reconnecting_stops_the_attempts(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """disconnect() during RECONNECTING: DISCONNECTED for good, no error, one disconnect event."""
    client = await signed_in(server, "alice@example.com", **FAST)
    recorder = Events(client)
    await asyncio.wait_for(server.server.stop(), TIMEOUT)
    await wait_until(lambda: state_is(client, ConnectionState.RECONNECTING), what="RECONNECTING")
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED
    await restart_in_process(server)
    assert await stays_true(lambda: state_is(client, ConnectionState.DISCONNECTED), 1.0)
    assert [e for e, _ in recorder.events] == ["disconnect"]
    assert client.user is None


DROPPED_SCRIPT = """
import asyncio, sys
from roomz import AsyncClient

async def main(url, token, cache, retries):
    client = AsyncClient(url, session_cache_file=cache, reconnect=retries != "0",
                         max_reconnect_attempts=int(retries), reconnect_delay=0.1)
    over = asyncio.Event()
    # Without retries the disconnect is the end; with them, the error once they run out.
    client.on("disconnect" if retries == "0" else "error", lambda event: over.set())
    await client.connect(token)
    print("connected", flush=True)
    await asyncio.wait_for(over.wait(), 20)
    print("over:", client.connection_state.value, flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("retries", ["0", "2"])
async def test_a_script_whose_connection_ended_leaves_nothing_open(
    restartable: RestartableServer, tmp_path: Path, retries: str
) -> None:
    """The server goes away and the client does not retry, or gives up retrying: the script
    ends with no "Unclosed client session" on its stderr."""
    proc = await restartable.start()
    link = await proc.request_link("alice@example.com")
    script = await python_script(DROPPED_SCRIPT, proc.url, link.token,
                                 str(tmp_path / "s.json"), retries)
    try:
        assert script.stdout is not None
        assert await asyncio.wait_for(script.stdout.readline(), TIMEOUT) == b"connected\n"
        await proc.stop(signal.SIGKILL)
    except BaseException:
        script.kill()
        await script.wait()
        raise
    assert await ends_cleanly(script, 30) == "over: disconnected\n"
