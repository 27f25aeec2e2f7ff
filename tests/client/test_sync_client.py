"""``SyncClient``: the same client without asyncio, on one background thread named roomz-client.

These tests are plain functions; the server runs in a thread and loop of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from roomz import AuthenticationError, ConnectionError, ConnectionState, SyncClient
from roomz.server.testing import ThreadedServer
from tests.events import Events, user_of
from tests.server.proc import free_port

from .helpers import TIMEOUT, assert_send_ack

THREAD = "roomz-client"


def client_threads() -> set[threading.Thread]:
    """The live threads named roomz-client."""
    return {t for t in threading.enumerate() if t.name == THREAD}


@pytest.fixture
def threaded_server() -> Iterator[ThreadedServer]:
    """A Roomz server in its own thread and loop."""
    with ThreadedServer() as server:
        yield server


@pytest.fixture
def sync_clients() -> Iterator[list[SyncClient]]:
    """A list of SyncClients that are closed when the test ends."""
    made: list[SyncClient] = []
    yield made
    for client in made:
        client.close()


def test_login_connect_send_and_name(
    threaded_server: ThreadedServer, sync_clients: list[SyncClient]
) -> None:
    """Every method and property in sync form, and handlers running in the roomz-client thread."""
    client = SyncClient(threaded_server.url, "", reconnect_delay=0.1, connection_timeout=5.0)
    sync_clients.append(client)
    recorder = Events(client)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert client.connected is False and client.user is None

    before = len(threaded_server.links())
    assert client.login("alice@example.com") is True
    link = threaded_server.links()[before]
    assert link.email == "alice@example.com"
    client.connect(link.token)
    assert client.connected is True
    assert client.connection_state is ConnectionState.CONNECTED
    assert client.user == user_of("alice@example.com")
    assert recorder.count("authenticated") == 1

    assert client.set_display_name("Alice") == {"status": "ok", "display_name": "Alice"}
    assert client.user == user_of("alice@example.com", "Alice")
    ack = client.send("Hello from a thread")
    assert_send_ack(ack)
    message = recorder.wait_for_sync("message", lambda d: d["id"] == ack["message_id"])
    assert message["user"] == user_of("alice@example.com", "Alice")
    assert message["content"] == "Hello from a thread"
    assert set(recorder.threads) == {THREAD}

    client.disconnect()
    assert client.connected is False
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert recorder.named("disconnect") == [{}]
    assert set(recorder.threads) == {THREAD}


def test_context_manager_example(threaded_server: ThreadedServer) -> None:
    """The API.md ``with SyncClient(server_url, session_token)`` example; no thread after."""
    server_url = threaded_server.url
    session_token = threaded_server.request_link("alice@example.com").token
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def handler(data: dict[str, Any]) -> None:
        received.append(data)
        done.set()

    before = client_threads()
    with SyncClient(server_url, session_token) as client:
        client.on("message", handler)
        result = client.send("Hello!")
        assert client_threads() - before, "no roomz-client thread while connected"
        assert done.wait(TIMEOUT)
    assert_send_ack(result)
    assert received[0]["content"] == "Hello!"
    assert received[0]["id"] == result["message_id"]
    assert client_threads() <= before
    assert client.connected is False


def test_close_stops_the_background_thread(threaded_server: ThreadedServer) -> None:
    """close() disconnects and ends the roomz-client thread; closing twice is harmless."""
    before = client_threads()
    client = SyncClient(threaded_server.url, threaded_server.request_link("bob@example.com").token)
    mine = client_threads() - before
    assert len(mine) == 1 and all(t.is_alive() for t in mine)
    client.connect()
    recorder = Events(client)
    client.close()
    assert client.connected is False
    assert recorder.named("disconnect") == [{}]
    assert not any(t.is_alive() for t in mine)
    assert client_threads() <= before
    client.close()


def test_failed_connect_in_with_statement_stops_the_thread(
    threaded_server: ThreadedServer,
) -> None:
    """A bad token in ``with SyncClient(...)``: AuthenticationError and no thread left behind."""
    before = client_threads()
    with pytest.raises(AuthenticationError), SyncClient(threaded_server.url, "bad-token"):
        pass  # pragma: no cover - never entered
    assert client_threads() <= before


def test_sends_from_several_threads(
    threaded_server: ThreadedServer, sync_clients: list[SyncClient]
) -> None:
    """Four threads sending twenty messages each: eighty ok acks, each message seen once."""
    token = threaded_server.request_link("alice@example.com").token
    client = SyncClient(threaded_server.url, token)
    sync_clients.append(client)
    client.connect()
    recorder = Events(client, ("message",))

    def send_twenty(worker: int) -> list[dict[str, Any]]:
        return [client.send(f"worker {worker} message {i}") for i in range(20)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(send_twenty, worker) for worker in range(4)]
        acks = [ack for future in futures for ack in future.result(timeout=30)]
    assert len(acks) == 80
    for ack in acks:
        assert_send_ack(ack)
    sent = {ack["message_id"] for ack in acks}
    assert len(sent) == 80
    recorder.wait_for_sync("message", lambda d: sent <= {m["id"] for m in recorder.named("message")}
                           , timeout=10)
    assert sorted(m["id"] for m in recorder.named("message")) == sorted(sent)
    assert client.connected


def test_errors_in_sync_form(sync_clients: list[SyncClient]) -> None:
    """The same exceptions as AsyncClient: login refused, bad token, no session, not connected."""
    with ThreadedServer(allowed_emails=frozenset({"alice@example.com"})) as server:
        client = SyncClient(server.url, "", connection_timeout=5.0)
        sync_clients.append(client)
        with pytest.raises(ConnectionError) as caught:
            client.login("mallory@example.com")
        assert caught.value.detail == "This email is not authorized to access this service."
        with pytest.raises(ConnectionError):
            client.send("not connected")
        with pytest.raises(ConnectionError):
            client.set_display_name("Alice")
        with pytest.raises(AuthenticationError, match="log ?in"):
            client.connect()
        with pytest.raises(AuthenticationError):
            client.connect("no-such-token")
        assert client.connection_state is ConnectionState.DISCONNECTED


def test_connect_token_keyword_and_clear_cached_session(
    threaded_server: ThreadedServer, sync_clients: list[SyncClient]
) -> None:
    """connect(token=...) works; after clear_cached_session(), connect() needs a new login."""
    client = SyncClient(threaded_server.url, "")
    sync_clients.append(client)
    client.connect(token=threaded_server.request_link("alice@example.com").token)
    assert client.connected
    client.disconnect()
    client.connect()  # the session is still known
    assert client.connected
    client.disconnect()
    client.clear_cached_session()
    with pytest.raises(AuthenticationError, match="log ?in"):
        client.connect()


def test_on_off_and_async_handlers(
    threaded_server: ThreadedServer, sync_clients: list[SyncClient]
) -> None:
    """on()/off() in sync form; async handlers run on the client's loop too."""
    token = threaded_server.request_link("alice@example.com").token
    client = SyncClient(threaded_server.url, token)
    sync_clients.append(client)
    client.connect()
    removed: list[str] = []
    awaited: list[str] = []
    kept = Events(client, ("message",))

    def removed_handler(data: dict[str, Any]) -> None:
        removed.append(data["id"])

    async def async_handler(data: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        awaited.append(threading.current_thread().name)

    client.on("message", removed_handler)
    client.on("message", async_handler)
    with pytest.raises(ValueError):
        client.on("nope", removed_handler)
    client.off("message", removed_handler)
    ack = client.send("one")
    kept.wait_for_sync("message", lambda d: d["id"] == ack["message_id"])
    assert removed == []
    client.off("message")
    late = Events(client, ("message",))
    second = client.send("two")
    late.wait_for_sync("message", lambda d: d["id"] == second["message_id"])
    assert [m["id"] for m in kept.named("message")] == [ack["message_id"]]
    assert awaited == [THREAD]


SYNC_SCRIPT = """
import sys
from roomz import SyncClient

url, cache = sys.argv[1:]
with SyncClient(url, session_cache_file=cache) as client:
    ack = client.send("from a later run")
    print(client.user["email"], ack["status"], flush=True)
"""


def test_session_cache_file_lets_a_later_process_connect_without_a_token(
    threaded_server: ThreadedServer, sync_clients: list[SyncClient], tmp_path: Path
) -> None:
    """SyncClient(session_cache_file=...) keeps the session like AsyncClient: a second
    SyncClient, in a new process, connects with the file alone."""
    cache = tmp_path / "state" / "session.json"
    first = SyncClient(threaded_server.url, session_cache_file=cache)
    sync_clients.append(first)
    first.connect(threaded_server.request_link("alice@example.com").token)
    first.close()
    assert cache.is_file()

    later = subprocess.run([sys.executable, "-c", SYNC_SCRIPT, threaded_server.url, str(cache)],
                           capture_output=True, text=True, timeout=30, check=False)
    assert (later.returncode, later.stderr) == (0, "")
    assert later.stdout == "alice@example.com ok\n"


def test_connect_with_retry_blocks_until_close_stops_it(
    sync_clients: list[SyncClient],
) -> None:
    """connect(retry=True) while no server listens: it blocks, counting its attempts; close()
    from another thread stops it with ConnectionError, and no thread is left."""
    before = client_threads()
    url = f"http://127.0.0.1:{free_port()}"
    client = SyncClient(url, "some-token", reconnect_delay=0.05, reconnect_delay_max=0.1,
                        max_reconnect_attempts=None, connection_timeout=2.0)
    sync_clients.append(client)
    with ThreadPoolExecutor(max_workers=1) as pool:
        connecting = pool.submit(client.connect, retry=True)
        deadline = time.monotonic() + TIMEOUT
        while client.reconnect_attempt < 3:
            assert time.monotonic() < deadline, "no third attempt"
            time.sleep(0.01)
        assert not connecting.done()
        assert client.connection_state is ConnectionState.CONNECTING
        wait = client.next_reconnect_in
        assert wait is None or 0 <= wait <= 0.1
        client.reconnect_now()  # thread-safe, and harmless when no attempt is waiting
        client.close()
        with pytest.raises(ConnectionError, match="disconnect"):
            connecting.result(timeout=TIMEOUT)
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert client_threads() <= before


def test_connect_with_retry_gives_up_after_the_attempts(sync_clients: list[SyncClient]) -> None:
    """max_reconnect_attempts=1 and no server: ConnectionError after two tries."""
    client = SyncClient(f"http://127.0.0.1:{free_port()}", "some-token", reconnect_delay=0.05,
                        max_reconnect_attempts=1)
    sync_clients.append(client)
    with pytest.raises(ConnectionError, match="after 2 tries"):
        client.connect(retry=True)
    assert client.connection_state is ConnectionState.DISCONNECTED


@pytest.mark.parametrize("call", ["send", "close"])
def test_a_handler_calling_a_blocking_method_gets_runtime_error_at_once(
    threaded_server: ThreadedServer, sync_clients: list[SyncClient], call: str
) -> None:
    """A handler (in the client's own thread) calling ``send()`` or ``close()`` gets
    RuntimeError at once instead of a deadlock, and the client goes on working."""
    client, sender = SyncClient(threaded_server.url), SyncClient(threaded_server.url)
    sync_clients.extend([client, sender])
    for each in (client, sender):
        each.connect(threaded_server.request_link("alice@example.com").token)
    raised: list[BaseException] = []
    handled = threading.Event()

    def call_back(data: dict[str, Any]) -> None:
        if data["content"] == "trigger":
            try:
                if call == "send":
                    client.send("reply")
                else:
                    client.close()
            except RuntimeError as exc:
                raised.append(exc)
            handled.set()

    client.on("message", call_back)
    sender.send("trigger")
    assert handled.wait(TIMEOUT), f"a handler calling {call}() did not get an answer"
    assert len(raised) == 1 and "handler cannot call" in str(raised[0]), raised
    assert client.connected
    assert_send_ack(client.send("still working"))
