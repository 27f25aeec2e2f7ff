"""Bursts of messages over long-polling, to and from a python-socketio client: all arrive,
however many one HTTP payload would hold."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from roomz.server.local import LocalServer

from .hostile_clients import POLLING_PATH, http_session, signed_in_over_polling

ALICE = "alice@example.com"
TIMEOUT = 10.0
REPOSITORY = Path(__file__).resolve().parents[2]


class PollingClient:
    """``tests/security/polling_client.py`` running in its own process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next_line(self) -> dict[str, Any]:
        """The client's next line of JSON."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT)
        if not line:
            assert self.process.stderr is not None
            errors = await asyncio.wait_for(self.process.stderr.read(), TIMEOUT)
            raise AssertionError(f"the polling client ended: {errors.decode()[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer


@asynccontextmanager
async def polling_client(url: str, token: str, send: int,
                         receive: int) -> AsyncIterator[PollingClient]:
    """A signed-in python-socketio long-polling client in another process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.security.polling_client", url, token, str(send),
        str(receive), cwd=REPOSITORY, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    client = PollingClient(process)
    try:
        assert await client.next_line() == {"connected": True}
        yield client
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), TIMEOUT)


async def test_a_burst_of_50_messages_from_a_long_polling_client_is_acked_and_echoed(
        server: LocalServer) -> None:
    """A python-socketio client on long-polling emits 50 messages at once (its transport
    sends them in one POST, and 100 packets come back): all acknowledged and echoed, and it
    stays connected."""
    async with polling_client(server.url, await server.sign_in(ALICE), 50, 0) as client:
        assert await client.next_line() == {"acked": 50, "echoed": 50, "disconnected": False}


async def test_a_burst_of_40_messages_reaches_a_long_polling_client(
        server: LocalServer) -> None:
    """Another long-polling connection of the user sends 40 messages in one POST: the
    python-socketio client on long-polling gets all 40 and stays connected (its engine.io
    decodes at most 16 packets per payload, so the server answers each poll with at most
    16)."""
    token = await server.sign_in(ALICE)
    async with polling_client(server.url, token, 0, 40) as client, \
            http_session() as http:
        assert await client.next_line() == {"acked": 0, "echoed": 0, "disconnected": False}
        cookie = {"Cookie": f"session_token={token}"}
        sid = await signed_in_over_polling(http, server.url, token)
        session = f"{server.url}{POLLING_PATH}&sid={sid}"

        burst = "\x1e".join(f'42["message",{{"content":"to polling {i}"}}]' for i in range(40))
        async with http.post(session, data=burst, headers=cookie) as resp:
            assert resp.status == 200

        assert await client.next_line() == {"received": 40, "disconnected": False}
