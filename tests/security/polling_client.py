"""A python-socketio client on long-polling, in a process of its own, for test_polling_bursts.

In its own process it decodes payloads with engine.io's own limit (16 packets per payload),
not the one a server in the same process raised. Run as::

    python -m tests.security.polling_client URL TOKEN SEND RECEIVE

It prints one JSON object per line: ``{"connected": true}`` once signed in; then, having
emitted SEND messages at once (without awaiting each), what became of them; then, after
waiting for RECEIVE messages from the user's other connections (up to 5 s), how many came.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import socketio

TIMEOUT = 5.0


def say(**fields: Any) -> None:
    """One line for the test."""
    print(json.dumps(fields), flush=True)


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait for ``condition`` (at most ``timeout`` seconds; the test judges what came)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def main(url: str, token: str, send: int, receive: int) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    echoes: list[Any] = []
    others: list[Any] = []
    gone: list[Any] = []
    sio.on("message", lambda data: (echoes if data["content"].startswith("burst ")
                                    else others).append(data))
    sio.on("disconnect", lambda *reason: gone.append(reason))
    await asyncio.wait_for(sio.connect(url, headers={"Cookie": f"session_token={token}"},
                                       transports=["polling"], wait_timeout=TIMEOUT),
                           TIMEOUT + 1)
    say(connected=True)

    acks = await asyncio.gather(*(sio.call("message", {"content": f"burst {i}"},
                                           timeout=TIMEOUT) for i in range(send)),
                                return_exceptions=True)
    await until(lambda: len(echoes) >= send or bool(gone))
    say(acked=sum(1 for ack in acks if isinstance(ack, dict) and ack.get("status") == "ok"),
        echoed=len(echoes), disconnected=bool(gone))

    await until(lambda: len(others) >= receive or bool(gone))
    say(received=len(others), disconnected=bool(gone))
    await asyncio.wait_for(sio.disconnect(), TIMEOUT)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
