"""Binary packets close the connection at once: the protocol uses none, nothing is buffered."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import socketio

from roomz.server.local import LocalServer
from tests.server.helpers import signed_in
from tests.server.proc import ServerProcess
from tests.waiting import wait_until

from .hostile_clients import RawSocket, http_session, rss_mb

ALICE = "alice@example.com"
FRAMES = 400
FRAME = os.urandom(500_000)
MAX_GROWTH_MB = 40.0  # what a few frames in flight may cost; buffering them all is 200 MB
ANNOUNCING = '451000-["message",{"_placeholder":true,"num":0}]'  # 1000 attachments to come


@pytest.mark.timeout(60)
async def test_announced_attachments_close_the_connection_before_any_is_buffered(
        tmp_path: Path) -> None:
    """A signed-in socket announces attachments, then sends 400 binary frames of 500 KB: the
    connection is closed at the announcement and the server's RSS stays level."""
    async with ServerProcess(state_home=tmp_path) as proc, http_session() as http:
        raw = await RawSocket.open(http, proc.url, await proc.sign_in(ALICE))
        await raw.sign_in()
        before = rss_mb(proc.process.pid)
        samples = [before]

        await raw.send(ANNOUNCING)
        sent = 0
        next_sample = time.monotonic()
        while sent < FRAMES and await raw.send(FRAME):
            sent += 1
            if time.monotonic() >= next_sample:
                samples.append(rss_mb(proc.process.pid))
                next_sample += 0.1
        closed = await raw.wait_closed(5)
        samples.append(rss_mb(proc.process.pid))
        await raw.close()

        print(f"frames sent before the close: {sent}; RSS MB: "
              + " ".join(f"{mb:.0f}" for mb in samples))
        assert closed and sent < FRAMES, f"the connection took all {sent} frames"
        assert max(samples) - before <= MAX_GROWTH_MB, f"RSS grew: {samples}"
        binary_lines = [line for line in proc.lines if "binary attachments" in line]
        assert len(binary_lines) == 1 and ALICE in binary_lines[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


async def test_a_binary_engineio_message_closes_the_connection(server: LocalServer) -> None:
    """A binary WebSocket frame (an Engine.IO binary message) ends the connection at once."""
    async with http_session() as http:
        raw = await RawSocket.open(http, server.url, await server.sign_in(ALICE))
        await raw.sign_in()

        await raw.send(b"\x04binary")

        assert await raw.wait_closed(5)
        await raw.close()


async def test_bytes_from_a_socketio_client_close_its_connection(server: LocalServer) -> None:
    """A python-socketio client that emits bytes (a binary event) is disconnected; the user's
    other connections hear that it left and carry on."""
    token = await server.sign_in(ALICE)
    async with signed_in(server.url, token) as other:
        sender = socketio.AsyncClient(reconnection=False)
        await asyncio.wait_for(sender.connect(server.url, headers={
            "Cookie": f"session_token={token}"}, transports=["websocket"], wait_timeout=5), 6)

        await sender.emit("message", {"content": b"bytes"})

        left = await other.wait_for("user_left")
        assert left["remaining_connections"] == 1
        await wait_until(lambda: not sender.connected, 5, "the sender to be disconnected")
        await asyncio.wait_for(sender.disconnect(), 5)
        await other.barrier()  # still served
