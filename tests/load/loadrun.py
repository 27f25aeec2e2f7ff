"""The load suite: many users, each with several connections, sending for a while.

Checks what a user would notice: every acknowledged message reaches every connection of
its sender exactly once, no error answers, no dropped connections. Prints throughput and
delivery latency. ``./dev load`` runs the long version (100 users x 10 connections, 30 s,
one node and two nodes on Redis); the test suite runs a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import socketio

from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess

SECRET = "load-suite-secret-0123456789abcdefghijkl"
OPEN_AT_ONCE = 50


@dataclass
class Connection:
    """One bare Socket.IO connection that counts what reaches it."""

    user: int
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(
        reconnection=False))
    delivered: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    dropped: bool = False

    def on_message(self, data: dict) -> None:  # type: ignore[type-arg]
        self.delivered[data["id"]] += 1
        sent_at = float(data["content"].rsplit(" ", 1)[1])
        self.latencies.append(time.perf_counter() - sent_at)


@dataclass
class LoadResult:
    """What the run saw."""

    nodes: int
    connections: int
    seconds: float
    acked: int = 0
    errors: int = 0
    lost: int = 0
    duplicated: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, refused or dropped, and something was sent."""
        return self.acked > 0 and not (self.errors or self.lost or self.duplicated
                                       or self.dropped)

    def report(self) -> str:
        """One block of figures."""
        quantiles = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 \
            else [0.0] * 99
        return (f"{self.nodes} node(s), {self.connections} connections, {self.seconds:.0f} s: "
                f"{self.acked} messages acked ({self.acked / self.seconds:.0f}/s), "
                f"{len(self.latencies)} deliveries ({len(self.latencies) / self.seconds:.0f}/s); "
                f"delivery latency p50 {quantiles[49] * 1e3:.1f} ms, "
                f"p99 {quantiles[98] * 1e3:.1f} ms; errors {self.errors}, lost {self.lost}, "
                f"duplicated {self.duplicated}, dropped connections {self.dropped}")


async def open_connections(urls: list[str], sessions: list[str], per_user: int,
                           timeout: float = 120.0) -> list[Connection]:
    """``per_user`` connections for each session; connection ``i`` goes to ``urls[i % n]``."""
    conns = [Connection(user) for user in range(len(sessions)) for _ in range(per_user)]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def open_one(i: int, conn: Connection) -> None:
        conn.sio.on("message", conn.on_message)
        conn.sio.on("disconnect", lambda *_: setattr(conn, "dropped", True))
        async with gate:
            await conn.sio.connect(urls[i % len(urls)], transports=["websocket"],
                                   headers={"Cookie": f"session_token={sessions[conn.user]}"},
                                   wait_timeout=10)

    await asyncio.wait_for(asyncio.gather(*(open_one(i, c) for i, c in enumerate(conns))),
                           timeout)
    return conns


async def run_load(urls: list[str], sessions: list[str], per_user: int,
                   seconds: float) -> LoadResult:
    """Connect ``per_user`` connections for each session (spread over ``urls``), then every
    user's first connection sends acked messages for ``seconds``."""
    conns = await open_connections(urls, sessions, per_user)
    result = LoadResult(len(urls), len(conns), seconds)
    acked: dict[int, list[str]] = {u: [] for u in range(len(sessions))}

    async def sender(user: int, conn: Connection, deadline: float) -> None:
        seq = 0
        while time.monotonic() < deadline and seq < 1_000_000:
            seq += 1
            ack = await conn.sio.call("message", {"content": f"u{user} {seq} "
                                                  f"{time.perf_counter()}"}, timeout=10)
            if ack.get("status") == "ok":
                acked[user].append(ack["message_id"])
            else:
                result.errors += 1

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(
        sender(u, conns[u * per_user], started + seconds) for u in acked)), seconds + 60)
    result.seconds = time.monotonic() - started
    expected = sum(len(ids) for ids in acked.values()) * per_user
    drain = time.monotonic() + 15
    while sum(c.delivered.total() for c in conns) < expected and time.monotonic() < drain:
        await asyncio.sleep(0.05)
    for conn in conns:
        ids = acked[conn.user]
        result.lost += sum(1 for m in ids if conn.delivered[m] == 0)
        result.duplicated += sum(conn.delivered[m] - 1 for m in ids if conn.delivered[m] > 1)
        result.latencies += conn.latencies
        result.dropped += conn.dropped
    result.acked = sum(len(ids) for ids in acked.values())
    await asyncio.gather(*(c.sio.disconnect() for c in conns), return_exceptions=True)
    return result


async def load_on(nodes: int, users: int, per_user: int, seconds: float) -> LoadResult:
    """Start ``nodes`` server processes (on a Redis when more than one) and run the load."""
    env = {"JWT_SECRET_KEY": SECRET, "ROOMZ_MAX_CONNECTIONS": str(users * per_user + 10),
           # Every user signs in from this one address first: that is set-up, not load.
           "ROOMZ_MAGIC_LINK_ADDRESS_LIMIT": str(max(users, 20))}
    redis = RedisProcess() if nodes > 1 else None
    servers: list[ServerProcess] = []
    with tempfile.TemporaryDirectory(prefix="roomz-load-") as state:
        try:
            extra: list[str] = []
            if redis is not None:
                await redis.start()
                extra = ["--redis-url", redis.url]
            servers = [ServerProcess(*extra, state_home=Path(state), env=env)
                       for _ in range(nodes)]
            for server in servers:
                await server.start()
            sessions = [await servers[0].sign_in(f"load{u}@example.com") for u in range(users)]
            return await run_load([s.url for s in servers], sessions, per_user, seconds)
        finally:
            for server in servers:
                await server.kill()
            if redis is not None:
                redis.kill()


def main() -> int:
    """``./dev load``: the long load run, one node then two nodes on Redis."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--connections", type=int, default=10, help="per user")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    ok = True
    for nodes in (1, 2):
        result = asyncio.run(load_on(nodes, args.users, args.connections, args.seconds))
        print(("PASS " if result.ok else "FAIL ") + result.report(), flush=True)
        ok &= result.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
