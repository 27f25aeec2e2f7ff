"""Redis going away and coming back: connections stay, answers say "try again", then recover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.server.proc import ServerProcess

from .helpers import a_client_on_each, eventually
from .redis_proc import RedisProcess


async def test_redis_restart_keeps_connections_and_recovers(
        node: Callable[..., ServerProcess], redis: RedisProcess, tmp_path: Path) -> None:
    """While Redis is down: 503 answers, no dropped connection, no traceback; then all works."""
    async with node() as one, node() as two:
        a, b = await a_client_on_each(one, two, "erin@example.com", tmp_path / "s.json")
        received: list[str] = []
        b.on("message", lambda d: received.append(d["content"]))
        await a.connect()
        await b.connect()
        try:
            redis.kill()
            ack = await a.send("while redis is down")
            assert ack["code"] == 503 and "try again" in ack["error"]
            async with aiohttp.ClientSession() as http, http.post(
                    f"{one.url}/auth/request-magic-link",
                    json={"email": "erin@example.com"}) as resp:
                assert resp.status == 503
                assert "Try again shortly" in (await resp.json())["detail"]
            assert a.connected and b.connected

            await redis.start()

            async def crosses() -> None:
                ack = await a.send("after the restart")
                assert ack.get("status") == "ok", ack
                await asyncio.sleep(0.2)
                assert "after the restart" in received

            await eventually(crosses)
            assert a.connected and b.connected
            link = await one.request_link("erin@example.com")
            assert link.token
            assert "Traceback" not in one.stderr + two.stderr
        finally:
            await a.disconnect()
            await b.disconnect()
