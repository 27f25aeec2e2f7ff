"""The history extension on the wire: resuming after a cursor, the window, ``history``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from roomz.server.local import LocalServer
from tests.waiting import wait_until

from .helpers import REFUSED, TIMEOUT, ChatClient, close_client, open_client, signed_in

ALICE = "alice@example.com"


def resuming(cursor: str | None) -> dict[str, Any]:
    """The CONNECT auth payload of a client that stands at ``cursor``."""
    return {"history": {"after": cursor}}


async def sent(client: ChatClient, *texts: str) -> list[str]:
    """Send each text, asserting it was acknowledged; their message ids."""
    ids = []
    for text in texts:
        ack = await client.send(text)
        assert ack["status"] == "ok", ack
        ids.append(ack["message_id"])
    return ids


async def replay_of(client: ChatClient) -> list[dict[str, Any]]:
    """The messages replayed to a resuming connection, once they have all come."""
    missed = (await client.wait_for("authenticated"))["history"]["missed"]

    def replayed() -> list[dict[str, Any]]:
        return [m for replay in client.named("replay") for m in replay["messages"]]

    await wait_until(lambda: len(replayed()) >= missed, what="the whole replay")
    return replayed()


async def test_a_connection_that_comes_back_gets_what_it_missed_before_anything_live(
        server: LocalServer) -> None:
    """Missed messages come in order, flagged, once, before the first live message."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as sender:
        first = await open_client(server.url, token, auth=resuming(None))
        assert await replay_of(first) == []
        start = first.authenticated["history"]
        assert start == {"messages": 1000, "seconds": 7 * 24 * 3600.0, "missed": 0,
                         "complete": True, "cursor": start["cursor"]}
        assert isinstance(start["cursor"], str)  # the start of alice's history
        seen_id = (await sent(sender, "before"))[0]
        seen = await first.wait_for("message", lambda d: d["id"] == seen_id)
        await close_client(first)

        missed = await sent(sender, "one", "<two>", "three")
        back = await open_client(server.url, token, auth=resuming(seen["cursor"]))
        try:
            replay = await replay_of(back)
            live = (await sent(sender, "live"))[0]
            await back.wait_for("message", lambda d: d["id"] == live)
        finally:
            await close_client(back)

    assert [m["id"] for m in replay] == missed
    assert [m["content"] for m in replay] == ["one", "&lt;two&gt;", "three"]
    assert all(m["replayed"] is True for m in replay)
    history = back.authenticated["history"]
    assert history["complete"] is True and history["missed"] == 3
    assert history["cursor"] == replay[-1]["cursor"]
    names = [name for name, _ in back.events]
    assert names == ["authenticated", "replay", "message"], names


async def test_past_the_window_the_replay_says_some_messages_are_gone() -> None:
    """Of more missed messages than the window holds, the newest come, marked incomplete;
    so does the whole window for a cursor the server does not know."""
    async with LocalServer(history_messages=3) as server:
        token = await server.sign_in(ALICE)
        async with signed_in(server.url, token) as sender:
            (first,) = await sent(sender, "seen")
            cursor = (await sender.wait_for("message", lambda d: d["id"] == first))["cursor"]
            missed = await sent(sender, *(f"m{i}" for i in range(5)))
            for asked in (cursor, "not-a-cursor"):
                async with signed_in(server.url, token, auth=resuming(asked)) as back:
                    replay = await replay_of(back)
                assert [m["id"] for m in replay] == missed[-3:]
                assert back.authenticated["history"]["complete"] is False


async def test_history_answers_the_last_messages(server: LocalServer) -> None:
    """``history`` {"limit": N}: the last N, oldest first; a bad limit is a 400."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:
        ids = await sent(alice, "a", "b", "c")
        answer = await alice.call("history", {"limit": 2})
        refused = [await alice.call("history", {"limit": bad}) for bad in (0, 1001, "2", True)]

    assert answer["status"] == "ok"
    assert [m["id"] for m in answer["messages"]] == ids[1:]
    assert all(m["replayed"] is True and m["cursor"] for m in answer["messages"])
    for refusal in refused:
        assert refusal == {"error": "Invalid 'limit': must be a whole number from 1 to 1000",
                           "code": 400}


async def test_a_malformed_resume_is_refused_with_the_reason(server: LocalServer) -> None:
    token = await server.sign_in(ALICE)
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        await open_client(server.url, token, auth={"history": {"after": 42}})


async def test_history_survives_a_restart(server: LocalServer) -> None:
    """What was kept before the server stopped is replayed after it started again."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as alice:
        (first,) = await sent(alice, "before the restart")
        cursor = (await alice.wait_for("message", lambda d: d["id"] == first))["cursor"]
        missed = await sent(alice, "missed")
    await server.stop()
    await server.start()
    async with signed_in(server.url, token, auth=resuming(cursor)) as back:
        replay = await replay_of(back)
    assert [m["id"] for m in replay] == missed


async def test_with_history_off_nothing_changes() -> None:
    """No ``history`` field, no ``cursor``, and the auth payload is ignored."""
    async with LocalServer(history=False) as server:
        token = await server.sign_in(ALICE)
        async with signed_in(server.url, token, auth=resuming("1.2")) as alice:
            (first,) = await sent(alice, "hi")
            message = await alice.wait_for("message", lambda d: d["id"] == first)
            assert "history" not in alice.authenticated
            assert "cursor" not in message
            assert "replay" not in [name for name, _ in alice.events]


@pytest.mark.timeout(60)
async def test_connections_resuming_while_messages_flow_see_each_once_in_order(
        server: LocalServer) -> None:
    """The race between joining the room and reading the store: a connection that comes
    back again and again, while another sends without pause, sees every message exactly
    once, in order, across its comings and goings."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as sender:
        stop = asyncio.Event()
        acked: list[str] = []

        async def keep_sending() -> None:
            for i in range(2000):
                if stop.is_set():
                    return
                ack = await sender.send(f"m{i}")
                assert ack["status"] == "ok", ack
                acked.append(ack["message_id"])

        seen: list[str] = []
        cursor: str | None = None
        task = asyncio.create_task(keep_sending())
        try:
            for _ in range(15):
                client = await open_client(server.url, token, auth=resuming(cursor))
                try:
                    await replay_of(client)
                    await client.wait_for("message")  # at least one live one
                finally:
                    await close_client(client)
                cursor = client.authenticated["history"]["cursor"] or cursor
                for name, data in client.events:
                    messages = data["messages"] if name == "replay" else (
                        [data] if name == "message" else [])
                    for message in messages:
                        seen.append(message["id"])
                        cursor = message["cursor"]
            stop.set()
            await asyncio.wait_for(task, TIMEOUT)
        finally:
            stop.set()
            task.cancel()
    # Everything from the first connection's start up to the last one's end, in order, once.
    start = acked.index(seen[0])
    assert seen == acked[start:start + len(seen)]
    assert len(seen) > 15


async def test_a_resuming_connection_that_sends_at_once_is_answered_after_its_replay(
        server: LocalServer) -> None:
    """Sent the moment Socket.IO connects, before the replay is out: ``authenticated``, the
    replay, the message, then its acknowledgement (the same on several nodes:
    tests/nodes/test_two_nodes.py)."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as writer:
        await sent(writer, *(f"earlier {n}" for n in range(250)))
        cursor = (await writer.wait_for("message"))["cursor"]
    client = await open_client(server.url, token, auth=resuming(cursor))
    try:  # the acknowledgement in the stream of events, as it arrives
        await client.sio.emit("message", {"content": "at once"}, callback=client.recorder("ack"))
        mine = (await client.wait_for("ack"))["message_id"]
        await client.wait_for("message", lambda d: d["id"] == mine)
    finally:
        await close_client(client)
    assert [event for event, data in client.events if event != "message"
            or data["id"] == mine] == ["authenticated", "replay", "replay", "replay",
                                       "message", "ack"]
