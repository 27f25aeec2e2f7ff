"""A server embedded in a program, on Redis: it starts and stops as promptly as alone."""

from __future__ import annotations

import asyncio
import time

from roomz.server.local import LocalServer

from .conftest import SECRET
from .redis_proc import RedisProcess

STOP_SECONDS = 10.0  # stopping must never wait longer than a default heartbeat (5 s) and a bit


async def test_an_embedded_node_stops_promptly_every_time(redis: RedisProcess) -> None:
    """Started and stopped ten times on a live Redis, it stops within a heartbeat each time,
    even when the stop lands while redis-py waits for an answer (it may swallow the
    cancellation)."""
    for attempt in range(10):
        # Beats every 10 ms, so that stops land in every phase of one.
        server = LocalServer(redis_url=redis.url, jwt_secret=SECRET, node_timeout=0.03)
        await asyncio.wait_for(server.start(), STOP_SECONDS)
        await asyncio.sleep(0.003 * attempt)
        started = time.monotonic()
        await asyncio.wait_for(server.stop(), STOP_SECONDS)
        assert time.monotonic() - started < STOP_SECONDS
