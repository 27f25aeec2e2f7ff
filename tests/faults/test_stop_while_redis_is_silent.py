"""A node stops at once while Redis does not answer; the other nodes count it out."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.nodes.conftest import SECRET
from tests.nodes.redis_proc import RedisProcess
from tests.server.helpers import signed_in
from tests.server.proc import ServerProcess

from .proxy import TcpProxy

ANN = "ann@example.com"
CONNECTIONS = 8
#: A node counted dead within 3 s of its last beat; the nodes beat every second.
QUICK = {"ROOMZ_NODE_TIMEOUT": "3"}
#: Above what a stop waits for Redis once (a leave, a question sweep and a beat under
#: way: 2 s each, retried once) and below one wait per connection (8 s for 8 connections
#: and more: a stop that waited connection by connection took 36 s for eight).
STOP_BOUND = 20.0
COUNT_OUT_BOUND = 20.0  # node timeout and a beat, with room for shared cores
SILENT = "Redis did not answer as this node stopped"


@pytest.mark.timeout(90)
async def test_a_node_stops_at_once_while_redis_is_silent_and_the_others_count_it_out(
        redis: RedisProcess, node: Callable[..., ServerProcess], tmp_path: Path,
        proxy_factory: Callable[[list[int]], Any]) -> None:
    """Eight connections on a node whose link to Redis goes silent (no answer, no reset):
    SIGTERM ends it within the bound, exit 0, with one line saying the others will count
    it out and no traceback; the node still linked to Redis then sends ``user_left`` for
    each of the eight, and ``who`` there lists its own connection alone."""
    proxy: TcpProxy = await proxy_factory([redis.port])
    silenced = ServerProcess("--redis-url", f"redis://127.0.0.1:{proxy.port}/0",
                             state_home=tmp_path, env={"JWT_SECRET_KEY": SECRET, **QUICK})
    async with silenced, node(**QUICK) as linked, contextlib.AsyncExitStack() as clients:
        token = await linked.sign_in(ANN)
        watcher = await clients.enter_async_context(signed_in(linked.url, token))
        for _ in range(CONNECTIONS):
            await clients.enter_async_context(signed_in(silenced.url, token))
        await watcher.wait_for("user_joined",
                               lambda d: d["total_connections"] == CONNECTIONS + 1,
                               what="every connection counted in Redis")

        proxy.blackhole()
        silenced.send_signal(signal.SIGTERM)
        try:
            code = await silenced.wait(timeout=STOP_BOUND)
        except asyncio.TimeoutError:
            raise AssertionError(f"the node was still stopping after {STOP_BOUND} s:\n"
                                 f"{silenced.stderr}") from None
        assert code == 0, silenced.stderr
        assert len([line for line in silenced.lines if SILENT in line]) == 1, silenced.stderr
        assert "Traceback" not in silenced.stderr, silenced.stderr

        await watcher.wait_for("user_left", lambda d: d["remaining_connections"] == 1,
                               timeout=COUNT_OUT_BOUND, what="the stopped node counted out")
        assert [d["remaining_connections"] for d in watcher.named("user_left")] == \
            list(range(CONNECTIONS, 0, -1))
        ack = await watcher.call("who", {})
        assert [c["connection_id"] for c in ack["connections"]] == [watcher.connection_id], ack
