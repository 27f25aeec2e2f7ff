"""A message sent again with its key is said once across two nodes on Redis history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.server.helpers import signed_in
from tests.server.proc import ServerProcess
from tests.server.test_send_once import delivered, keyed

EMAIL = "dora@example.com"


async def test_a_keyed_message_sent_on_two_nodes_is_said_once(
        node: Callable[..., ServerProcess]) -> None:
    """Sent again through the other node, and raced on both nodes at once, each key is
    delivered once to the connections of both nodes; the later sends are duplicates."""
    async with node() as one, node() as two:
        token = await one.sign_in(EMAIL)
        async with signed_in(one.url, token) as a, signed_in(two.url, token) as b:
            assert "send_once" in a.authenticated["features"]
            assert "send_once" in b.authenticated["features"]
            first = await keyed(a, "resent", "k")
            again = await keyed(b, "resent", "k")
            assert again == {"status": "ok", "message_id": first["message_id"],
                             "timestamp": first["timestamp"], "duplicate": True}
            for round_ in range(20):
                acks = await asyncio.gather(keyed(a, f"race {round_}", f"race-{round_}"),
                                            keyed(b, f"race {round_}", f"race-{round_}"))
                assert sorted(bool(ack.get("duplicate")) for ack in acks) == [False, True]
                assert acks[0]["message_id"] == acks[1]["message_id"]
            for client in (a, b):
                assert [m["id"] for m in await delivered(client, "resent")] == \
                    [first["message_id"]]
                for round_ in range(20):
                    assert len(await delivered(client, f"race {round_}")) == 1
            kept = await a.call("history", {"limit": 100})
    assert len([m for m in kept["messages"] if m["content"] == "resent"]) == 1
