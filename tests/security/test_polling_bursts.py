"""A long-polling client's burst of messages all arrive, however many one HTTP payload holds."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from roomz.server.testing import LocalServer
from tests.server.helpers import assert_ok_ack, cookie_headers
from tests.waiting import wait_until

ALICE = "alice@example.com"
BURST = 50  # engine.io's default decodes at most 16 packets per payload


async def test_a_long_polling_burst_of_50_messages_is_acked_and_delivered(
        server: LocalServer) -> None:
    """A python-socketio client on long-polling emits 50 messages without awaiting each (its
    transport sends them in one POST): all 50 are acknowledged and delivered back to it.

    This client shares the process's engine.io payload limit, which the server has raised;
    its GET answers carry up to 100 packets.
    """
    sio = socketio.AsyncClient(reconnection=False)
    delivered: list[dict[str, Any]] = []
    sio.on("message", delivered.append)
    await asyncio.wait_for(sio.connect(server.url, headers=cookie_headers(
        await server.sign_in(ALICE)), transports=["polling"], wait_timeout=5), 6)
    try:
        acks = await asyncio.wait_for(asyncio.gather(*(
            sio.call("message", {"content": f"burst {i}"}, timeout=5) for i in range(BURST))), 8)

        for ack in acks:
            assert_ok_ack(ack)
        await wait_until(lambda: len(delivered) >= BURST, 5, lambda: f"{len(delivered)} delivered")
        assert sorted(m["content"] for m in delivered) == sorted(f"burst {i}" for i in range(BURST))
    finally:
        await asyncio.wait_for(sio.disconnect(), 5)
