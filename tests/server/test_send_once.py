"""A message sent again with its key is said once (feature ``send_once``, docs/protocol.md
3.5): on one node, on SQLite history; the two-node version is in tests/nodes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from roomz.server.local import LocalServer

from .helpers import ChatClient, signed_in

ALICE = "alice@example.com"


async def keyed(client: ChatClient, content: str, key: str, **fields: Any) -> Any:
    """Send ``content`` with ``key``; the acknowledgement."""
    return await client.call("message", {"content": content, "key": key, **fields})


async def delivered(client: ChatClient, content: str) -> list[dict[str, Any]]:
    """The messages ``content`` reached ``client`` as, once a marker sent after them is
    back (the server writes each connection's packets in order)."""
    await client.barrier()
    return [m for m in client.named("message") if m["content"] == content]


async def test_a_keyed_message_sent_again_is_delivered_and_kept_once(
        server: LocalServer) -> None:
    """Sent again on the same connection and on another, the message is delivered once,
    kept once, and every later acknowledgement is the first one's, marked duplicate."""
    token = await server.sign_in(ALICE)
    key = str(uuid.uuid4())
    async with signed_in(server.url, token) as one, signed_in(server.url, token) as two:
        assert "send_once" in one.authenticated["features"]
        first = await keyed(one, "once", key)
        again = await keyed(one, "once", key)
        elsewhere = await keyed(two, "once", key)
        seen_by_two = await delivered(two, "once")
        seen_by_one = await delivered(one, "once")
        kept = await one.call("history", {"limit": 10})
    assert first["status"] == "ok" and "duplicate" not in first
    for later in (again, elsewhere):
        assert later == {"status": "ok", "message_id": first["message_id"],
                         "timestamp": first["timestamp"], "duplicate": True}
    assert [m["id"] for m in seen_by_one] == [first["message_id"]]
    assert [m["id"] for m in seen_by_two] == [first["message_id"]]
    assert [m["id"] for m in kept["messages"] if m["content"] == "once"] == \
        [first["message_id"]]


async def test_another_key_or_none_is_another_message(server: LocalServer) -> None:
    """Keys name messages: two keys are two messages, and key-less ones are never folded."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as client:
        acks = [await keyed(client, "same text", "k1"), await keyed(client, "same text", "k2"),
                await client.send("same text"), await client.send("same text")]
        seen = await delivered(client, "same text")
    assert all("duplicate" not in ack for ack in acks)
    assert len({ack["message_id"] for ack in acks}) == 4
    assert len(seen) == 4


async def test_two_sends_of_one_key_racing_on_two_connections_deliver_once(
        server: LocalServer) -> None:
    """Sent at once on two connections, one send delivers and the other is the duplicate."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as one, signed_in(server.url, token) as two:
        for round_ in range(20):
            key = f"race-{round_}"
            acks = await asyncio.gather(keyed(one, f"race {round_}", key),
                                        keyed(two, f"race {round_}", key))
            assert sorted(bool(ack.get("duplicate")) for ack in acks) == [False, True], acks
            assert acks[0]["message_id"] == acks[1]["message_id"]
        for round_ in range(20):
            assert len(await delivered(one, f"race {round_}")) == 1
            assert len(await delivered(two, f"race {round_}")) == 1


@pytest.mark.parametrize("key", ["", "x" * 101, 42, ["k"], {"k": 1}, True])
async def test_a_bad_key_is_refused_naming_the_field(server: LocalServer, key: Any) -> None:
    """Not a string of 1-100 characters: a 400 naming 'key', and nothing is delivered."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as client:
        ack = await client.call("message", {"content": "bad key", "key": key})
        seen = await delivered(client, "bad key")
    assert ack["code"] == 400 and "'key'" in ack["error"], ack
    assert seen == []


async def test_a_key_is_not_taken_with_a_question(server: LocalServer) -> None:
    """Questions and answers go their own way (3.8): a key with one is a 400 naming 'key'."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as client:
        question = {"question": "Lunch?", "timeout": 30,
                    "answers": [{"id": "y", "label": "yes"}, {"id": "n", "label": "no"}]}
        ack = await keyed(client, "Lunch?", "q1", content_type="application/x-question",
                          question_data=question)
    assert ack["code"] == 400 and "'key'" in ack["error"], ack


async def test_a_rich_message_is_said_once_too(server: LocalServer) -> None:
    """A keyed Markdown message keeps its fields, once."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as client:
        first = await keyed(client, "**rich**", "r1", content_type="text/markdown")
        again = await keyed(client, "**rich**", "r1", content_type="text/markdown")
        seen = await delivered(client, "**rich**")
    assert again["duplicate"] is True and again["message_id"] == first["message_id"]
    assert [m["content_type"] for m in seen] == ["text/markdown"]


async def test_a_key_survives_a_restart(tmp_path: Any) -> None:
    """The key is kept with the message: sent again to the restarted server, it is still
    the first one's."""
    async with LocalServer(state_dir=tmp_path) as server:
        token = await server.sign_in(ALICE)
        async with signed_in(server.url, token) as client:
            first = await keyed(client, "before the restart", "k")
        await server.stop()
        await server.start()
        async with signed_in(server.url, token) as client:
            again = await keyed(client, "before the restart", "k")
            seen = await delivered(client, "before the restart")
    assert again["duplicate"] is True and again["message_id"] == first["message_id"]
    assert seen == []


async def test_without_history_there_is_no_send_once_and_a_key_is_ignored() -> None:
    """``--no-history``: the feature is not offered, and a key changes nothing (as on the
    published server, which ignores fields it does not know)."""
    async with LocalServer(history=False) as server:
        token = await server.sign_in(ALICE)
        async with signed_in(server.url, token) as client:
            assert "send_once" not in client.authenticated["features"]
            acks = [await keyed(client, "no history", "k") for _ in range(2)]
            seen = await delivered(client, "no history")
    assert all(ack["status"] == "ok" and "duplicate" not in ack for ack in acks)
    assert len(seen) == 2
