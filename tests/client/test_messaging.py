"""``send()`` and ``set_display_name()``: the server's acknowledgements, errors and timeouts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from roomz import ConnectionError, ConnectionState, SyncClient
from roomz.limits import split_text
from roomz.server.local import LocalServer
from tests.events import Events, user_of
from tests.faults.proxy import TcpProxy

from .conftest import ClientFactory, SignedIn
from .helpers import (
    TIMEOUT,
    ackless_server,
    assert_error_dict,
    assert_send_ack,
    restart_in_process,
    wait_until,
)

INVALID_NAME = "Invalid display name: must be 1-50 characters, no newlines"


async def test_send_returns_the_servers_ack(server: LocalServer, signed_in: SignedIn) -> None:
    """send() answers {"status": "ok", "message_id", "timestamp"} and the message echoes back."""
    client = await signed_in(server, "alice@example.com")
    recorder = Events(client)
    ack = await asyncio.wait_for(client.send("Hello, world!"), TIMEOUT)
    assert_send_ack(ack)
    message = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert message["content"] == "Hello, world!"
    assert message["timestamp"] == ack["timestamp"]
    assert message["user"] == user_of("alice@example.com")


async def test_send_example_from_the_api_reference(
    server: LocalServer, signed_in: SignedIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API.md send example prints the message id."""
    client = await signed_in(server, "alice@example.com")

    async def example() -> dict[str, Any]:
        result = await client.send("Hello, world!")
        if "error" in result:
            print(f"Failed: {result['error']}")
        else:
            print(f"Message ID: {result['message_id']}")
        return result

    result = await asyncio.wait_for(example(), TIMEOUT)
    assert capsys.readouterr().out == f"Message ID: {result['message_id']}\n"


async def test_send_rejected_by_the_server_returns_its_error(
    server: LocalServer, signed_in: SignedIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty message: the server's {"error", "code": 400}, and the example prints the failure."""
    client = await signed_in(server, "alice@example.com")
    result = await asyncio.wait_for(client.send("   "), TIMEOUT)
    assert result == {"error": "Missing or invalid 'content' field", "code": 400}
    if "error" in result:
        print(f"Failed: {result['error']}")
    assert capsys.readouterr().out == "Failed: Missing or invalid 'content' field\n"
    assert client.connected


async def test_send_of_a_message_over_the_limit_returns_the_servers_refusal(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """A 1,103-character line: send() hands back the 400 naming both numbers, the connection
    goes on, and nothing of it arrives; its parts from split_text all go through."""
    client = await signed_in(server, "alice@example.com")
    recorder = Events(client)
    line = "word " * 220 + "end"
    assert len(line) == 1103
    result = await asyncio.wait_for(client.send(line), TIMEOUT)
    assert result == {"error": "Message too long: 1103 characters, at most 1000", "code": 400}
    assert client.connected
    acks = [await asyncio.wait_for(client.send(part), TIMEOUT) for part in split_text(line)]
    for ack in acks:
        assert_send_ack(ack)
    await recorder.wait_for("message", lambda d: d["id"] == acks[-1]["message_id"])
    assert [m["content"] for m in recorder.named("message")] == split_text(line)


async def test_set_display_name_returns_the_servers_ack(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """set_display_name: {"status": "ok", "display_name"} for a name and for None; user follows."""
    client = await signed_in(server, "alice@example.com")
    ack = await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
    assert ack == {"status": "ok", "display_name": "Alice"}
    assert client.user == user_of("alice@example.com", "Alice")
    ack = await asyncio.wait_for(client.set_display_name(None), TIMEOUT)
    assert ack == {"status": "ok", "display_name": None}
    assert client.user == user_of("alice@example.com")


async def test_set_display_name_example_from_the_api_reference(
    server: LocalServer, signed_in: SignedIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API.md set_display_name example runs as written and prints what it says."""
    client = await signed_in(server, "alice@example.com")

    async def example() -> None:
        # Set display name
        result = await client.set_display_name("Alice")
        print(f"Display name set to: {result['display_name']}")

        # Clear display name
        result = await client.set_display_name(None)
        print("Display name cleared")

    await asyncio.wait_for(example(), TIMEOUT)
    assert capsys.readouterr().out == "Display name set to: Alice\nDisplay name cleared\n"


async def test_display_name_shows_on_messages(server: LocalServer, signed_in: SignedIn) -> None:
    """Messages carry the sender's display name, and none once it is cleared."""
    client = await signed_in(server, "alice@example.com")
    recorder = Events(client)
    await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
    ack = await asyncio.wait_for(client.send("named"), TIMEOUT)
    named = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert named["user"]["display_name"] == "Alice"
    await asyncio.wait_for(client.set_display_name(None), TIMEOUT)
    ack = await asyncio.wait_for(client.send("plain"), TIMEOUT)
    plain = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert plain["user"]["display_name"] is None


async def test_invalid_display_name_returns_the_servers_error(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """A name over 50 characters: {"error", "code": 400}; the earlier name stays."""
    client = await signed_in(server, "alice@example.com")
    await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT)
    result = await asyncio.wait_for(client.set_display_name("x" * 51), TIMEOUT)
    assert result == {"error": INVALID_NAME, "code": 400}
    assert client.user is not None and client.user["display_name"] == "Alice"
    assert client.connected


async def test_send_and_set_display_name_need_a_connection(
    server: LocalServer, signed_in: SignedIn, make_client: ClientFactory
) -> None:
    """Before connect() and after disconnect(), send and set_display_name raise ConnectionError."""
    never = make_client(server.url)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(never.send("hello"), TIMEOUT)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(never.set_display_name("Alice"), TIMEOUT)
    client = await signed_in(server, "alice@example.com")
    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.send("hello"), TIMEOUT)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(client.set_display_name(None), TIMEOUT)


async def test_no_ack_in_time_is_a_408(make_client: ClientFactory) -> None:
    """A server that never acknowledges: send and set_display_name return code 408 in time."""
    async with ackless_server() as url:
        client = make_client(url, connection_timeout=1.0)
        await asyncio.wait_for(client.connect("any-token"), TIMEOUT)
        assert client.connected
        started = time.monotonic()
        result = await asyncio.wait_for(client.send("anyone there?"), TIMEOUT)
        assert_error_dict(result, 408)
        assert 0.9 < time.monotonic() - started < 3.0
        assert_error_dict(await asyncio.wait_for(client.set_display_name("Alice"), TIMEOUT), 408)
        assert client.connected
        await asyncio.wait_for(client.disconnect(), TIMEOUT)


async def test_calls_waiting_for_their_acknowledgement_end_at_once_when_the_link_drops(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """The server has the message, its acknowledgement is held, then the link breaks: send
    and set_display_name return 408 (the message may have arrived) as the drop is noticed,
    not after ``connection_timeout`` (30 s here)."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        other = await signed_in(server, "alice@example.com")
        heard = Events(other)
        client = await signed_in(server, "alice@example.com", url=proxy.url,
                                 connection_timeout=30.0, reconnect_delay=0.1,
                                 max_reconnect_attempts=20)
        proxy.deafen()  # what the client sends goes through; nothing comes back
        sending = asyncio.create_task(client.send("in flight"))
        naming = asyncio.create_task(client.set_display_name("Alice"))
        await heard.wait_for("message", lambda d: d["content"] == "in flight")
        proxy.cut()
        cut_at = time.monotonic()
        sent, named = await asyncio.wait_for(asyncio.gather(sending, naming), TIMEOUT)
        assert time.monotonic() - cut_at < 2.0
        for result, what in ((sent, "the message"), (named, "the display name")):
            assert_error_dict(result, 408)
            assert result["error"] == ("the connection was lost before the server "
                                       f"acknowledged {what}")
        assert client.connection_state is not ConnectionState.CONNECTED
        proxy.restore()
        await wait_until(lambda: client.connected, 10, "the reconnect")
        assert_send_ack(await asyncio.wait_for(client.send("after the drop"), TIMEOUT))
    finally:
        await asyncio.wait_for(proxy.close(), TIMEOUT)


async def test_a_call_waiting_for_its_acknowledgement_ends_at_once_on_disconnect(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """disconnect() while a send waits for its acknowledgement: the send returns 408 at
    once, saying the connection was closed, even while the close itself waits for a
    server that does not answer."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        other = await signed_in(server, "alice@example.com")
        heard = Events(other)
        client = await signed_in(server, "alice@example.com", url=proxy.url,
                                 connection_timeout=30.0)
        proxy.deafen()
        sending = asyncio.create_task(client.send("in flight"))
        await heard.wait_for("message", lambda d: d["content"] == "in flight")
        closing = asyncio.create_task(client.disconnect())
        closed_at = time.monotonic()
        result = await asyncio.wait_for(sending, TIMEOUT)
        assert time.monotonic() - closed_at < 2.0
        assert result == {"error": "the connection was closed before the server acknowledged "
                                   "the message", "code": 408}
        proxy.restore()  # the server's side of the close comes through
        await asyncio.wait_for(closing, TIMEOUT)
    finally:
        await asyncio.wait_for(proxy.close(), TIMEOUT)


@pytest.mark.timeout(60)
async def test_the_sync_client_too_returns_408_at_once_when_the_link_drops(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """SyncClient wraps AsyncClient: its send, waiting in its own thread, returns as the
    drop is noticed too."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    heard = Events(await signed_in(server, "alice@example.com"))
    link = await server.request_link("alice@example.com")
    client = SyncClient(proxy.url, link.token, connection_timeout=30.0)
    sending: asyncio.Future[dict[str, Any]] | None = None
    try:
        await asyncio.wait_for(asyncio.to_thread(client.connect), TIMEOUT)
        proxy.deafen()
        sending = asyncio.ensure_future(asyncio.to_thread(client.send, "in flight"))
        await heard.wait_for("message", lambda d: d["content"] == "in flight")
        proxy.cut()
        cut_at = time.monotonic()
        proxy.restore()
        result = await asyncio.wait_for(asyncio.shield(sending), TIMEOUT)
        assert time.monotonic() - cut_at < 2.0
        assert result == {"error": "the connection was lost before the server acknowledged "
                                   "the message", "code": 408}
    finally:
        proxy.restore()
        if sending is not None:  # a send still waiting as the client closes blocks for good
            await asyncio.wait_for(asyncio.gather(sending, return_exceptions=True), 35)
        await asyncio.wait_for(asyncio.to_thread(client.close), TIMEOUT)
        await asyncio.wait_for(proxy.close(), TIMEOUT)


async def test_display_name_is_reapplied_after_reconnect(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """After the server restarts, the client's name is set again: others see it on messages."""
    alice = await signed_in(server, "alice@example.com", reconnect_delay=0.1,
                            max_reconnect_attempts=20)
    other = await signed_in(server, "alice@example.com", reconnect_delay=0.1,
                            max_reconnect_attempts=20)
    seen_by_other = Events(other)
    assert (await asyncio.wait_for(alice.set_display_name("Alice"), TIMEOUT))["status"] == "ok"
    await restart_in_process(server)
    await wait_until(lambda: alice.connected and other.connected, 10, "both to reconnect")
    assert alice.user == user_of("alice@example.com", "Alice")
    ack = await asyncio.wait_for(alice.send("after the restart"), TIMEOUT)
    assert_send_ack(ack)
    message = await seen_by_other.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert message["user"] == user_of("alice@example.com", "Alice")


async def test_cleared_display_name_stays_cleared_after_reconnect(
    server: LocalServer, signed_in: SignedIn
) -> None:
    """A name set and then cleared is not brought back by a reconnect."""
    alice = await signed_in(server, "alice@example.com", reconnect_delay=0.1,
                            max_reconnect_attempts=20)
    recorder = Events(alice)
    await asyncio.wait_for(alice.set_display_name("Alice"), TIMEOUT)
    await asyncio.wait_for(alice.set_display_name(None), TIMEOUT)
    await restart_in_process(server)
    await recorder.wait_for("authenticated")
    await wait_until(lambda: alice.connected, 10, "the reconnect")
    ack = await asyncio.wait_for(alice.send("plain"), TIMEOUT)
    message = await recorder.wait_for("message", lambda d: d["id"] == ack["message_id"])
    assert message["user"]["display_name"] is None
    assert alice.user == user_of("alice@example.com")
