"""Server growth: ours and Node's Socket.IO server with 1,000 and 5,000 connections on one node.

For each size, and each server on a fresh process (sizes in turn, servers alternating):

1. sign in one user per 10 connections;
2. open every connection, at most 100 opening at a time -> time to connect everyone
   (from the first WebSocket opened to the last ``authenticated``);
3. server RSS before and with all of them open -> KB per connection;
4. every user sends ``--messages`` messages, one after the other, each from its next
   connection, with acknowledgements (all users at once) -> server CPU per acknowledged
   message (utime + stime from ``/proc``) and the delay from sending to each of the user's
   10 connections receiving it, p50 and p99; every delivery counted, lost and duplicated.

The load generator is light on purpose, so that 5,000 connections fit in one process on a
small machine: raw Engine.IO over aiohttp WebSockets, speaking the few packets the load
needs (open, CONNECT, events, acknowledgements, ping/pong); it is not a client to copy.
Ours keeps every check, with its caps raised to the size (``--max-connections``) and its
per-connection message rate out of the way, as in ``server_load.py``. The benchmark raises
its own open-file limit (and its servers', which inherit it) to what the sizes need.
Loopback only; every phase is bounded in time. ``--quick``: 500 connections, 5 messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from _common import p99
from server_load import ServerProcess, bare, node, node_missing, ours

CONNS_PER_USER = 10
OPEN_CONCURRENCY = 100
CONNECT_LIMIT_S = 120.0
SEND_LIMIT_S = 120.0
DRAIN_LIMIT_S = 20.0
CALL_TIMEOUT_S = 30.0
SERVERS = ("ours", "node", "bare")


class Connection:
    """One raw Engine.IO WebSocket of a signed-in user: acknowledgements and deliveries."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.authenticated = asyncio.get_running_loop().create_future()
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.delivered: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.next_ack = 0
        self.pongs: set[asyncio.Future[None]] = set()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            self._received(msg.data)
        if not self.authenticated.done():
            self.authenticated.set_exception(ConnectionError("closed before authenticated"))

    def _received(self, text: str) -> None:
        if text == "2":  # Engine.IO PING
            self.pongs.add(pong := asyncio.ensure_future(self._pong()))
            pong.add_done_callback(self.pongs.discard)
        elif text.startswith("42"):  # Socket.IO EVENT
            name, data = json.loads(text[2:])
            if name == "message":
                sent_at = float(data["content"].rsplit(" ", 1)[1])
                self.latencies.append(time.perf_counter() - sent_at)
                self.delivered[data["content"]] += 1
            elif name == "authenticated" and not self.authenticated.done():
                self.authenticated.set_result(None)
        elif text.startswith("43"):  # Socket.IO ACK: 43<id>[...]
            end = text.index("[")
            future = self.acks.pop(int(text[2:end]), None)
            if future is not None and not future.done():
                future.set_result(json.loads(text[end:])[0])
        elif text.startswith("44") and not self.authenticated.done():  # CONNECT_ERROR
            self.authenticated.set_exception(ConnectionError(text))

    async def _pong(self) -> None:
        with contextlib.suppress(ConnectionError):  # closing: the server no longer asks
            await self.ws.send_str("3")

    async def send(self, content: str) -> dict[str, Any]:
        """Send one ``message`` and return its acknowledgement."""
        self.next_ack += 1
        future = self.acks[self.next_ack] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(f"42{self.next_ack}" + json.dumps(["message",
                                                                 {"content": content}]))
        ack: dict[str, Any] = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        if ack.get("status") != "ok":
            raise RuntimeError(f"message not acknowledged: {ack!r}")
        return ack

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        self.reader.cancel()


async def open_connection(http: aiohttp.ClientSession, url: str, jwt: str) -> Connection:
    """An Engine.IO WebSocket with the session cookie, connected to ``/``, authenticated."""
    ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket",
                               headers={"Cookie": f"session_token={jwt}"})
    opened = await ws.receive(timeout=CALL_TIMEOUT_S)
    if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
        raise ConnectionError(f"no Engine.IO OPEN: {opened!r}")
    conn = Connection(ws)
    await ws.send_str("40")  # Socket.IO CONNECT to "/"
    await asyncio.wait_for(conn.authenticated, CALL_TIMEOUT_S)
    return conn


async def open_all(http: aiohttp.ClientSession, url: str, jwts: list[str]) -> list[Connection]:
    """One connection per JWT, ``OPEN_CONCURRENCY`` at a time, all within the time limit."""
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(jwt: str) -> Connection:
        async with limit:
            return await open_connection(http, url, jwt)

    tasks = [asyncio.create_task(one(jwt)) for jwt in jwts]
    done, pending = await asyncio.wait(tasks, timeout=CONNECT_LIMIT_S)
    for task in pending:
        task.cancel()
    opened = [t.result() for t in tasks  # in the order of jwts: users' connections together
              if t in done and not t.cancelled() and t.exception() is None]
    if len(opened) < len(jwts):
        await asyncio.gather(*(c.close() for c in opened))
        failed = [t.exception() for t in done if not t.cancelled() and t.exception()]
        raise RuntimeError(f"{len(jwts) - len(opened)} of {len(jwts)} connections failed "
                           f"or timed out: {failed[:1]!r}")
    return opened


async def measure(server: ServerProcess, emails: list[str], messages: int) -> dict[str, float]:
    """Every figure of one server with ``CONNS_PER_USER`` connections per email."""
    await server.start()
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            jwts = [await server.sign_in(http, email) for email in emails]
            await asyncio.sleep(1.0)
            before = server.rss_kb()
            start = time.perf_counter()
            conns = await open_all(http, server.url, [j for j in jwts
                                                      for _ in range(CONNS_PER_USER)])
            connect_s = time.perf_counter() - start
            try:
                await asyncio.sleep(1.0)
                kb_per_conn = (server.rss_kb() - before) / len(conns)
                figures = await fan_out(server, conns, messages)
            finally:
                await asyncio.gather(*(c.close() for c in conns))
        return {"connect_s": connect_s, "kb_per_conn": kb_per_conn, **figures}
    finally:
        server.stop()


async def fan_out(server: ServerProcess, conns: list[Connection],
                  messages: int) -> dict[str, float]:
    """Each user sends ``messages`` in turn from its connections; count and time deliveries."""
    users = [conns[i:i + CONNS_PER_USER] for i in range(0, len(conns), CONNS_PER_USER)]
    acked: list[list[str]] = [[] for _ in users]
    deadline = time.monotonic() + SEND_LIMIT_S

    async def sender(user: int) -> None:
        for i in range(messages):
            if time.monotonic() > deadline:
                return
            content = f"user {user} message {i} {time.perf_counter()!r}"
            with contextlib.suppress(asyncio.TimeoutError, RuntimeError, ConnectionError):
                await users[user][i % CONNS_PER_USER].send(content)
                acked[user].append(content)

    cpu_start = server.cpu_seconds()
    await asyncio.gather(*(sender(u) for u in range(len(users))))
    expected = sum(len(a) for a in acked) * CONNS_PER_USER
    drain_deadline = time.monotonic() + DRAIN_LIMIT_S
    while time.monotonic() < drain_deadline:
        if sum(c.delivered.total() for c in conns) >= expected:
            break
        await asyncio.sleep(0.05)
    cpu = server.cpu_seconds() - cpu_start
    lost = duplicated = 0
    for sent, user_conns in zip(acked, users, strict=True):
        for conn in user_conns:
            lost += sum(1 for m in sent if conn.delivered[m] == 0)
            duplicated += sum(conn.delivered[m] - 1 for m in sent if conn.delivered[m] > 1)
    latencies = [s * 1000 for c in conns for s in c.latencies]
    sent_count = sum(len(a) for a in acked)
    return {"acked": sent_count, "failed": len(users) * messages - sent_count,
            "cpu_per_msg": cpu / max(sent_count, 1) * 1e6,
            "p50_ms": statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": p99(latencies) if len(latencies) > 1 else float("nan"),
            "lost": lost, "duplicated": duplicated}


def raise_open_files(needed: int) -> None:
    """Raise this process's soft open-file limit (its servers inherit it) to ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(f"open-file limit {soft} (hard {hard}) is below the {needed} wanted: the "
              "largest size may fail", flush=True)


def makers(size: int, wanted: list[str]) -> dict[str, Callable[[list[str], Path], ServerProcess]]:
    """The servers to measure at ``size`` connections, skipping those that cannot run."""
    all_makers: dict[str, Callable[[list[str], Path], ServerProcess]] = {
        "ours": lambda emails, d: ours(emails, d, max_connections=size + 100),
        "node": node, "bare": bare,
    }
    chosen = {}
    for name in wanted:
        if name == "node" and (missing := node_missing()) is not None:
            print(f"node server: skipped ({missing})")
            continue
        chosen[name] = all_makers[name]
    return chosen


def report(results: dict[tuple[int, str], dict[str, float]]) -> None:
    """Print the growth table, one row per size and server, and ours/node per size."""
    rows = [("connections", "server", "connect all (s)", "KB/conn", "CPU/msg (us)",
             "p50 (ms)", "p99 (ms)", "msgs acked", "lost/dup")]
    for (size, name), f in results.items():
        rows.append((str(size), name, f"{f['connect_s']:.1f}", f"{f['kb_per_conn']:.1f}",
                     f"{f['cpu_per_msg']:.0f}", f"{f['p50_ms']:.1f}", f"{f['p99_ms']:.1f}",
                     f"{f['acked']:.0f}", f"{f['lost']:.0f}/{f['duplicated']:.0f}"))
    for size in sorted({s for s, _ in results}):
        mine, theirs = results.get((size, "ours")), results.get((size, "node"))
        if mine and theirs:
            rows.append((str(size), "ours/node",
                         *(f"{mine[k] / theirs[k]:.2f}" if theirs[k] else "-"
                           for k in ("connect_s", "kb_per_conn", "cpu_per_msg", "p50_ms",
                                     "p99_ms")), "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


async def run(sizes: list[int], messages: int,
              wanted: list[str]) -> dict[tuple[int, str], dict[str, float]]:
    """Every size, every server on a fresh process; prints each result as it comes."""
    results: dict[tuple[int, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="roomz-growth-") as tmp:
        for size in sizes:
            emails = [f"growth-{i:04d}@example.com" for i in range(size // CONNS_PER_USER)]
            for name, make in makers(size, wanted).items():
                workdir = Path(tempfile.mkdtemp(prefix=f"{name}-{size}-", dir=tmp))
                figures = await measure(make(emails, workdir), emails, messages)
                results[size, name] = figures
                print(f"{size} {name:5} connect {figures['connect_s']:.1f} s, "
                      f"{figures['kb_per_conn']:.1f} KB/conn, {figures['cpu_per_msg']:.0f} us "
                      f"CPU/msg, p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms,"
                      f" acked {figures['acked']:.0f}, lost {figures['lost']:.0f}, "
                      f"dup {figures['duplicated']:.0f}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse flags, measure, print the table; 1 when a delivery was lost or duplicated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 connections, 5 messages")
    parser.add_argument("--sizes", help="connection counts, comma-separated (default 1000,5000)")
    parser.add_argument("--messages", type=int, help="messages per user (default 20, quick 5)")
    parser.add_argument("--servers", default="ours,node",
                        help=f"comma-separated, of {','.join(SERVERS)} (default ours,node)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("500" if args.quick else "1000,5000")).split(",")]
    messages = args.messages or (5 if args.quick else 20)
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    if unknown := [s for s in wanted if s not in SERVERS]:
        parser.error(f"unknown server {unknown[0]!r}: choose from {', '.join(SERVERS)}")
    raise_open_files(2 * max(sizes) + 1000)  # the connections' both ends, and some to spare
    print(f"server growth: {', '.join(map(str, sizes))} connections ({CONNS_PER_USER} per "
          f"user), {messages} messages per user", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = asyncio.run(run(sizes, messages, wanted))
    except KeyboardInterrupt:
        print("server growth: interrupted; servers stopped", file=sys.stderr)
        return 130
    report(results)
    return 1 if any(f["lost"] or f["duplicated"] for f in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
