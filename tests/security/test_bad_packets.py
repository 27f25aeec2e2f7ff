"""Bad packets from strangers: each closes its connection with one quiet line, no traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.server.proc import ServerProcess

from .hostile_clients import RawSocket, http_session, settled

SOCKETS = 5
COPIES = 400  # per socket: 2000 of each packet
MAX_NEW_LINES = 10
BAD_FRAMES = {
    "empty Socket.IO packet": "4",
    "unterminated JSON": '42["message",',
    "unknown Engine.IO type": "9",
    "unknown Socket.IO type": "49",
    "over-deep JSON": "42" + "[" * 100_000,
    "CONNECT_ERROR from a client": '44{"message":"x"}',
    "not an Engine.IO packet": "x",
    "empty frame": "",
    "event before CONNECT": '42["message",{"content":"hi"}]',
}
BAD_PAYLOADS = ["9", "x", "2", "6", "4\x1e42[", "b%%%"]  # long-polling POST bodies


async def flood(http: aiohttp.ClientSession, url: str, frame: str) -> list[RawSocket]:
    """``SOCKETS`` unauthenticated sockets, each sending ``frame`` ``COPIES`` times."""
    sockets = await asyncio.gather(*(RawSocket.open(http, url) for _ in range(SOCKETS)))
    for raw in sockets:
        for _ in range(COPIES):
            if not await raw.send(frame):
                break
    return sockets


@pytest.mark.timeout(90)
async def test_bad_packets_close_the_connection_with_a_few_quiet_lines(tmp_path: Path) -> None:
    """2000 copies of each bad packet (and 2000 refused CONNECTs) from unauthenticated
    sockets add a handful of log lines, no traceback, and every such socket is closed."""
    async with ServerProcess(state_home=tmp_path) as proc, http_session() as http:
        before = len(proc.lines)
        floods = {name: await flood(http, proc.url, frame) for name, frame in BAD_FRAMES.items()}
        refused = await RawSocket.open(http, proc.url, "not-a-jwt")
        for _ in range(2000):
            if not await refused.send("40"):
                break
        await refused.wait_text(lambda text: text.startswith("44"))

        closed = {name: await asyncio.gather(*(raw.wait_closed(5) for raw in sockets))
                  for name, sockets in floods.items()}
        await settled(proc)  # lines about the last packets reach the log
        added = proc.lines[before:]
        for sockets in floods.values():
            for raw in sockets:
                await raw.close()
        await refused.close()

        assert "Traceback" not in "\n".join(added), "\n".join(added[:60])
        still_open = [name for name, results in closed.items() if not all(results)]
        assert still_open == [], f"not closed after: {still_open}"
        assert len(added) <= MAX_NEW_LINES, "\n".join(added[:60])
        assert any("it sent" in line for line in added)  # the operator hears of it once


async def test_bad_long_polling_payloads_are_answered_400_and_close_their_socket(
        tmp_path: Path) -> None:
    """A long-polling POST that does not decode (or carries packets clients never send) is
    answered 400 at once, its socket is gone, and the log has no traceback."""
    async with ServerProcess(state_home=tmp_path) as proc, http_session() as http:
        polling = f"{proc.url}/socket.io/?EIO=4&transport=polling"
        answers = {}
        for body in BAD_PAYLOADS:
            async with http.get(polling) as resp:
                sid = json.loads((await resp.text())[1:])["sid"]  # after the OPEN type, "0"
            async with http.post(f"{polling}&sid={sid}", data=body.encode(),
                                 timeout=aiohttp.ClientTimeout(total=5)) as resp:
                status = resp.status
            async with http.get(f"{polling}&sid={sid}",
                                timeout=aiohttp.ClientTimeout(total=5)) as resp:
                answers[body] = (status, resp.status)

        assert answers == {body: (400, 400) for body in BAD_PAYLOADS}
        assert "Traceback" not in proc.stderr, proc.stderr
