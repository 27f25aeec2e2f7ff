"""One connection may send at most message_rate messages a second (message_burst at once)."""

from __future__ import annotations

import asyncio
import time

from roomz.server.local import LocalServer
from tests.server.helpers import assert_ok_ack, signed_in

ALICE = "alice@example.com"
TOO_MANY = {"error": "Too many messages: at most 2 per second; slow down", "code": 429}


async def test_messages_over_the_rate_are_answered_429_and_the_connection_stays() -> None:
    """With a burst of 5 and 2 a second, the 6th message at once is answered 429, naming the
    limit, and reaches no one; so is a display name change; soon after, sending works again."""
    async with LocalServer(message_rate=2, message_burst=5) as server:
        token = await server.sign_in(ALICE)
        async with signed_in(server.url, token) as alice, signed_in(server.url, token) as other:
            for i in range(5):
                assert_ok_ack(await alice.send(f"within the burst {i}"))

            over = await alice.send("one too many")
            name = await alice.call("set_display_name", {"display_name": "Flood"})

            assert over == TOO_MANY
            assert name == TOO_MANY
            before = await other.barrier()
            contents = [data["content"] for event, data in before if event == "message"]
            assert "one too many" not in contents
            deadline = time.monotonic() + 5
            while (answer := await alice.send("later")) == TOO_MANY:
                assert time.monotonic() < deadline, "the rate never let a message through"
                await asyncio.sleep(0.1)
            assert_ok_ack(answer)
            assert alice.sio.connected
