"""A connection that never reads is disconnected once its queue is full; memory levels off."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.server.helpers import cookie_headers
from tests.server.proc import ServerProcess

from .hostile_clients import open_non_reader, rise, rss_mb

ALICE = "alice@example.com"
SECONDS = 20
PER_SECOND = 1000
CONTENT = "x" * 900  # large messages make what piles up for the non-reader easy to see
MAX_RISE_MB = 10.0  # the second half of the run; without a bound it climbs ~2 MB a second


@pytest.mark.timeout(90)
async def test_a_connection_that_never_reads_is_disconnected_and_memory_levels_off(
        tmp_path: Path) -> None:
    """One of Alice's connections never reads while another sends ~1000 messages a second for
    20 s: the reader is disconnected (one log line naming Alice, user_left to the sender)
    and the server's RSS, sampled every second, stops climbing."""
    env = {"ROOMZ_MESSAGE_RATE": "5000", "ROOMZ_MESSAGE_BURST": "5000"}  # the flood is the test
    async with ServerProcess(state_home=tmp_path, env=env) as proc:
        token = await proc.sign_in(ALICE)
        stuck = await open_non_reader(proc.url, token)
        sender = socketio.AsyncClient(reconnection=False)
        left: list[Any] = []
        acked = 0

        def on_ack(*args: Any) -> None:
            nonlocal acked
            acked += 1

        sender.on("user_left", left.append)
        await asyncio.wait_for(sender.connect(proc.url, headers=cookie_headers(token),
                                              transports=["websocket"], wait_timeout=5), 6)
        samples: list[float] = []
        try:
            start = time.monotonic()
            sent = 0
            while (elapsed := time.monotonic() - start) < SECONDS:
                if len(samples) <= elapsed:
                    samples.append(rss_mb(proc.process.pid))
                due = int(elapsed * PER_SECOND)
                for _ in range(min(due - sent, 50)):
                    await sender.emit("message", {"content": CONTENT}, callback=on_ack)
                    sent += 1
                await asyncio.sleep(0.005)
            deadline = time.monotonic() + 10
            while not left and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await asyncio.wait_for(sender.disconnect(), 5)
            stuck.close()

        print(f"sent {sent}, acked {acked}, RSS MB each second: "
              + " ".join(f"{mb:.0f}" for mb in samples))
        assert acked > SECONDS * PER_SECOND / 4, f"the flood did not get through: {acked} acked"
        assert left and left[0]["remaining_connections"] == 1, "the non-reader was not dropped"
        lines = [line for line in proc.lines if "reads too slowly" in line]
        assert len(lines) == 1 and ALICE in lines[0], proc.stderr[-2000:]
        assert rise(samples) <= MAX_RISE_MB, f"RSS kept rising: {samples}"
