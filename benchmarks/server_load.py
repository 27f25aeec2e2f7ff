"""Server load: ours against Node's Socket.IO server, the published 0.4.0 and bare python-socketio.

Each server runs as a subprocess on a free loopback port; this script is the load generator.
Rounds alternate (ours, node, published, bare, ours, ...) so slow drift on a shared machine
hits all alike. Per server and round, on a fresh process:

1. memory: server RSS before and with 1000 connections open -> KB per connection;
2. round trip: one connection, sequential ``message`` calls -> median and p99;
3. fan-out: users x connections, every connection keeps one ``message`` call in flight;
   every delivery is counted -> acked msgs/s, server CPU (utime+stime) per acked message,
   and deliveries lost or duplicated.

The servers:

- ``ours``: ``roomz-server`` from this venv, every check on;
- ``node``: ``benchmarks/node/server.js``, a minimal Roomz-shaped server on Node's
  ``socket.io`` 4 (cookie JWT check, ``authenticated``, ack, emit to the user's room; no
  validation, escaping or presence). Skipped unless ``node`` runs and
  ``benchmarks/node/node_modules`` exists (``./dev bench`` installs it);
- ``published``: roomz 0.4.0 under uvicorn, skipped unless ``ROOMZ_PUBLISHED_VENV`` (or
  ``--published-venv``) names its virtualenv;
- ``bare``: ``benchmarks/bare/server.py``, the same minimal server on python-socketio +
  aiohttp with their defaults;
- ``ours-no-history`` (only when named in ``--servers``): ours with ``--no-history``, to
  show what keeping every message for clients that were away costs (Node's keeps none).

Ours and published sign users in by magic link, as a person does; node and bare have no
sign-in of their own, so the benchmark mints each session JWT with the secret it gives them.

``--quick`` (CI): one round, 300 round trips, 10 users x 10 connections x 20 messages,
200 connections for memory. The load generator is this one process; when it nears 100% CPU
(printed per round) throughput is bounded by it, but CPU per message is the server's own.
Ours runs with its per-connection message rate raised out of the way (``--message-rate``,
``--message-burst``): round trips and fan-out send from each connection as fast as it goes.
Exit status is 0 unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import socketio
from _common import FLOOD_RATE, die_with_parent, p99, proc_stat

HERE = Path(__file__).resolve().parent
OURS_SERVER = Path(sys.executable).with_name("roomz-server")
NODE_DIR = HERE / "node"
BARE_SERVER = HERE / "bare" / "server.py"
PUBLISHED_SCRIPT = (
    "import logging, sys, uvicorn; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
    'uvicorn.run("roomz.server:asgi_app", host="127.0.0.1", port=int(sys.argv[1]), '
    'log_level="warning")'
)
TOKEN_IN_LOG = re.compile(r"/auth/verify\?token=([A-Za-z0-9_-]+)(?=\s)")
OPEN_CONCURRENCY = 50
SERVERS = ("ours", "node", "published", "bare")
#: Run only when named: ours without its message history, to show what keeping it costs.
EXTRA_SERVERS = ("ours-no-history",)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Profile:
    """How much load each phase applies."""

    round_trips: int = 2000
    round_trip_limit_s: float = 60.0
    fanout_users: int = 20
    fanout_conns_per_user: int = 10
    fanout_msgs_per_conn: int = 50
    fanout_limit_s: float = 60.0
    memory_users: int = 100
    memory_conns_per_user: int = 10


FULL = Profile()
QUICK = Profile(round_trips=300, round_trip_limit_s=20.0, fanout_users=10,
                fanout_msgs_per_conn=20, fanout_limit_s=20.0, memory_users=20)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One server under test: start it, sign users in, read its CPU time and RSS, stop it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 workdir: Path) -> None:
        self.name, self.argv, self.env, self.workdir = name, argv, env, workdir
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.log_path = workdir / f"{name}.log"
        self.log_offset = 0
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Spawn the server and wait until its port accepts connections."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=die_with_parent(signal.SIGTERM))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited: {self.log_tail()}")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), 1.0)
                writer.close()
                return
            except (OSError, asyncio.TimeoutError):  # distinct errors before Python 3.11
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} server not listening after {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server, killing it if it does not exit within 10 seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        """The last lines the server wrote, for error messages."""
        return self.log_path.read_text(errors="replace")[-1500:]

    def cpu_seconds(self) -> float:
        """The server process's own user + system CPU time so far."""
        assert self.proc is not None
        fields = proc_stat(self.proc.pid)
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def rss_kb(self) -> int:
        """The server process's resident set size in KB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    async def next_token(self, timeout: float = 10.0) -> str:
        """The first magic-link token the server logged since the previous one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_offset)
                text = log.read().decode(errors="replace")
            if match := TOKEN_IN_LOG.search(text):
                self.log_offset += len(text[:match.end()].encode())
                return match.group(1)
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{self.name}: no magic link in the log after {timeout}s")

    async def sign_in(self, http: aiohttp.ClientSession, email: str) -> str:
        """Request a link, read its token from the log, redeem it; return the session JWT."""
        async with http.post(f"{self.url}/auth/request-magic-link", json={"email": email}) as r:
            if r.status != 200:
                raise RuntimeError(f"{self.name}: link request {r.status}: {await r.text()}")
        token = await self.next_token()
        async with http.get(f"{self.url}/auth/verify", params={"token": token},
                            allow_redirects=False) as r:
            cookie = r.cookies.get("session_token")
        if cookie is None:
            raise RuntimeError(f"{self.name}: no session cookie for {email} ({r.status})")
        return cookie.value


class MintingServer(ServerProcess):
    """A minimal server without sign-in endpoints: the benchmark mints each session JWT
    with the secret it gave the server, with the claims ours puts in its cookie."""

    async def sign_in(self, http: aiohttp.ClientSession, email: str) -> str:
        """A session JWT for ``email``, valid for an hour."""
        now = int(time.time())
        return jwt.encode({"sub": f"user:{email}", "email": email, "iat": now,
                           "exp": now + 3600, "channel_token": secrets.token_urlsafe(32),
                           "ver": 1}, self.env["JWT_SECRET_KEY"], algorithm="HS256")


def server_env(emails: list[str], workdir: Path) -> dict[str, str]:
    """The environment both servers get: a fresh 40-character secret and the allow-list."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOMZ_", "JWT_"))}
    env.update(JWT_SECRET_KEY=secrets.token_urlsafe(30), ALLOWED_EMAILS=",".join(emails),
               XDG_STATE_HOME=str(workdir / "state"))
    return env


def ours(emails: list[str], workdir: Path, max_connections: int = 5000, *,
         history: bool = True) -> ServerProcess:
    """Our reference server, from the venv running this script (``history=False``: with
    ``--no-history``)."""
    port = free_port()
    argv = [str(OURS_SERVER), "--host", "127.0.0.1", "--port", str(port),
            "--max-connections", str(max_connections),
            "--message-rate", str(FLOOD_RATE), "--message-burst", str(FLOOD_RATE),
            # Every user signs in from this one address before the measuring starts.
            "--magic-link-address-limit", str(max(len(emails), 20))]
    if not history:
        argv.append("--no-history")
    return ServerProcess("ours" if history else "ours-no-history", argv,
                         server_env(emails, workdir), port, workdir)


def published(venv: Path, emails: list[str], workdir: Path) -> ServerProcess:
    """The published roomz 0.4.0 under uvicorn, from its own venv (same import name)."""
    port = free_port()
    argv = [str(venv / "bin" / "python"), "-c", PUBLISHED_SCRIPT, str(port)]
    return ServerProcess("published", argv, server_env(emails, workdir), port, workdir)


def node_missing() -> str | None:
    """Why the Node server cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "no node on PATH"
    if not (NODE_DIR / "node_modules" / "socket.io").is_dir():
        return f"no {NODE_DIR / 'node_modules'} (./dev bench installs it)"
    return None


def node(emails: list[str], workdir: Path) -> ServerProcess:
    """The minimal Roomz-shaped server on Node's Socket.IO (``benchmarks/node/server.js``)."""
    port = free_port()
    argv = ["node", str(NODE_DIR / "server.js"), str(port)]
    return MintingServer("node", argv, server_env(emails, workdir), port, workdir)


def bare(emails: list[str], workdir: Path) -> ServerProcess:
    """The same minimal server on bare python-socketio + aiohttp (``benchmarks/bare``)."""
    port = free_port()
    argv = [sys.executable, str(BARE_SERVER), str(port)]
    return MintingServer("bare", argv, server_env(emails, workdir), port, workdir)


class Client:
    """A bare Socket.IO connection of one user that counts the message ids delivered to it."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.delivered: Counter[str] = Counter()
        self.authenticated = asyncio.Event()
        self.sio.on("authenticated", lambda data: self.authenticated.set())
        self.sio.on("message", self._on_message)

    def _on_message(self, data: Any) -> None:
        self.delivered[data["id"]] += 1

    async def open(self, url: str, jwt: str, timeout: float = 20.0) -> None:
        """Connect with the session cookie and wait for ``authenticated``."""
        await asyncio.wait_for(self.sio.connect(
            url, headers={"Cookie": f"session_token={jwt}"}, transports=["websocket"],
            wait_timeout=timeout), timeout + 1)
        await asyncio.wait_for(self.authenticated.wait(), timeout)

    async def send(self, content: str, timeout: float = 10.0) -> str:
        """Send one message and return the acknowledged message id."""
        ack = await self.sio.call("message", {"content": content}, timeout=timeout)
        if not isinstance(ack, dict) or ack.get("status") != "ok":
            raise RuntimeError(f"message not acknowledged: {ack!r}")
        return str(ack["message_id"])

    async def close(self, timeout: float = 5.0) -> None:
        """Disconnect, giving up silently after ``timeout``."""
        with contextlib.suppress(asyncio.TimeoutError, OSError):
            await asyncio.wait_for(self.sio.disconnect(), timeout)


async def close_all(clients: list[Client]) -> None:
    """Disconnect every client, at most 100 at a time."""
    limit = asyncio.Semaphore(100)

    async def close_one(client: Client) -> None:
        async with limit:
            await client.close()

    await asyncio.gather(*(close_one(c) for c in clients))


async def open_all(url: str, jwts: list[str]) -> list[Client]:
    """One connection per JWT, opened ``OPEN_CONCURRENCY`` at a time; all or none."""
    clients = [Client() for _ in jwts]
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one(client: Client, jwt: str) -> None:
        async with limit:
            await client.open(url, jwt)

    results = await asyncio.gather(*(open_one(c, j) for c, j in zip(clients, jwts, strict=True)),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await close_all(clients)
        raise RuntimeError(f"{len(errors)} of {len(jwts)} connections failed: {errors[0]!r}")
    return clients


async def measure_memory(server: ServerProcess, jwts: list[str], per_user: int) -> float:
    """KB of server RSS per open connection, after a warm-up with two connections."""
    warm = await open_all(server.url, jwts[:1] * 2)
    for client in warm:
        await client.send("warm-up")
    await close_all(warm)
    await asyncio.sleep(1.0)  # let the server process the disconnects before it is measured
    before = server.rss_kb()
    clients = await open_all(server.url, [jwt for jwt in jwts for _ in range(per_user)])
    try:
        await asyncio.sleep(1.0)
        with_all = server.rss_kb()
    finally:
        await close_all(clients)
    await asyncio.sleep(1.0)
    return (with_all - before) / len(clients)


async def measure_round_trips(server: ServerProcess, jwt: str, count: int,
                              limit_s: float) -> tuple[float, float]:
    """Median and p99 in microseconds of sequential ``message`` calls on one connection."""
    (client,) = await open_all(server.url, [jwt])
    samples: list[float] = []
    try:
        for i in range(50):
            await client.send(f"warm-up {i}", timeout=5)
        deadline = time.monotonic() + limit_s
        for i in range(count):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            await client.send(f"round trip {i}", timeout=5)
            samples.append((time.perf_counter() - start) * 1e6)
    finally:
        await close_all([client])
    return statistics.median(samples), p99(samples)


async def measure_fan_out(server: ServerProcess, jwts: list[str],
                          profile: Profile) -> dict[str, float]:
    """Every connection sends sequentially; count deliveries and the server's CPU time."""
    per_user = profile.fanout_conns_per_user
    clients = await open_all(server.url, [jwt for jwt in jwts for _ in range(per_user)])
    users = [clients[u * per_user:(u + 1) * per_user] for u in range(len(jwts))]
    acked: list[list[str]] = [[] for _ in users]
    failures = 0

    async def sender(user: int, client: Client, deadline: float) -> None:
        nonlocal failures
        for i in range(profile.fanout_msgs_per_conn):
            if time.monotonic() > deadline:
                return
            try:
                acked[user].append(await client.send(f"load {user}.{i}", timeout=10))
            except (asyncio.TimeoutError, RuntimeError, socketio.exceptions.SocketIOError):
                failures += 1
                return

    try:
        cpu_start, client_cpu_start = server.cpu_seconds(), time.process_time()
        start = time.perf_counter()
        deadline = time.monotonic() + profile.fanout_limit_s
        await asyncio.gather(*(sender(u, c, deadline)
                               for u, conns in enumerate(users) for c in conns))
        elapsed = time.perf_counter() - start
        expected = sum(len(ids) for ids in acked) * per_user
        drain_deadline = time.monotonic() + 10.0  # deliveries to other connections may trail
        while time.monotonic() < drain_deadline:
            if sum(c.delivered.total() for c in clients) >= expected:
                break
            await asyncio.sleep(0.02)
        cpu = server.cpu_seconds() - cpu_start
        client_cpu = time.process_time() - client_cpu_start
        lost = duplicated = stray = 0
        for ids, conns in zip(acked, users, strict=True):
            for client in conns:
                lost += sum(1 for m in ids if client.delivered[m] == 0)
                duplicated += sum(client.delivered[m] - 1 for m in ids if client.delivered[m] > 1)
                stray += len(client.delivered.keys() - set(ids))
    finally:
        await close_all(clients)
    sent = sum(len(ids) for ids in acked)
    return {"throughput": sent / elapsed, "cpu_per_msg": cpu / max(sent, 1) * 1e6,
            "acked": sent, "failed": failures, "lost": lost, "duplicated": duplicated,
            "stray": stray, "client_cpu": client_cpu / elapsed * 100}


async def bench_server(server: ServerProcess, emails: list[str],
                       profile: Profile) -> dict[str, float]:
    """All three phases against one freshly started server process."""
    try:
        await server.start()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            jwts = [await server.sign_in(http, email) for email in emails]
        figures = {"kb_per_conn": await measure_memory(server, jwts,
                                                       profile.memory_conns_per_user)}
        figures["rtt_median"], figures["rtt_p99"] = await measure_round_trips(
            server, jwts[0], profile.round_trips, profile.round_trip_limit_s)
        figures.update(await measure_fan_out(server, jwts[:profile.fanout_users], profile))
        return figures
    finally:
        server.stop()


@dataclass(frozen=True)
class Figure:
    """One row of the table: how to label, combine across rounds and format a figure."""

    key: str
    label: str
    combine: Callable[[list[float]], float] = statistics.median
    fmt: str = "{:.0f}"
    #: Targets: ours <= ratio x that server's figure, in the same run.
    max_ratio: dict[str, float] = field(default_factory=dict)
    max_value: float | None = None  # target: ours <= this
    must_be_zero: bool = False  # target: ours == 0


FIGURES = [
    Figure("rtt_median", "round trip median (us)"),
    Figure("rtt_p99", "round trip p99 (us)"),
    Figure("throughput", "fan-out throughput (acked msg/s)"),
    Figure("cpu_per_msg", "server CPU per acked msg (us)", fmt="{:.1f}",
           max_ratio={"node": 1.0, "published": 0.85}),
    Figure("kb_per_conn", "memory per connection (KB)", fmt="{:.1f}",
           max_ratio={"published": 0.8}, max_value=25.0),
    Figure("acked", "fan-out msgs acked (all rounds)", combine=sum),
    Figure("failed", "fan-out calls failed", combine=sum),
    Figure("lost", "deliveries lost", combine=sum, must_be_zero=True),
    Figure("duplicated", "deliveries duplicated", combine=sum, must_be_zero=True),
    Figure("stray", "unexpected deliveries", combine=sum, must_be_zero=True),
]


def verdicts(fig: Figure, mine: float, combined: dict[str, float]) -> list[tuple[str, bool]]:
    """Each target of ``fig`` that can be checked in this run, and whether ours meets it."""
    checked = [(f"<= {limit}x {name}", mine <= limit * combined[name])
               for name, limit in fig.max_ratio.items() if combined.get(name)]
    if fig.max_value is not None:
        checked.append((f"<= {fig.max_value:g}", mine <= fig.max_value))
    if fig.must_be_zero:
        checked.append(("= 0", mine == 0))
    return checked


def report(results: dict[str, list[dict[str, float]]]) -> bool:
    """Print the comparison table; return True when every target that applies passes."""
    names = [name for name, runs in results.items() if runs]
    others = [name for name in names if name != "ours"]
    rows = [("figure", *names, *(f"ours/{name}" for name in others), "targets", "result")]
    passed = True
    for fig in FIGURES:
        combined = {name: fig.combine([r[fig.key] for r in results[name]]) for name in names}
        mine = combined["ours"]
        checked = verdicts(fig, mine, combined)
        passed = passed and all(ok for _, ok in checked)
        ratios = [f"{mine / combined[name]:.2f}" if combined[name] else "-" for name in others]
        rows.append((fig.label, *(fig.fmt.format(combined[name]) for name in names), *ratios,
                     ", ".join(target for target, _ in checked),
                     " ".join("PASS" if ok else "FAIL" for _, ok in checked)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print("rates and per-message figures: median over rounds; counts: summed over rounds")
    return passed


def summary(f: dict[str, float]) -> str:
    """One line of figures from one server in one round."""
    return (f"memory {f['kb_per_conn']:.1f} KB/conn, "
            f"rtt {f['rtt_median']:.0f}/{f['rtt_p99']:.0f} us, {f['throughput']:.0f} msg/s, "
            f"{f['cpu_per_msg']:.1f} us CPU/msg, lost {f['lost']:.0f}, "
            f"dup {f['duplicated']:.0f}, load generator CPU {f['client_cpu']:.0f}%")


def available_servers(emails: list[str], venv: Path | None,
                      wanted: list[str]) -> dict[str, Callable[[Path], ServerProcess]]:
    """The servers of ``wanted`` that can run here, each as a maker taking its workdir;
    those that cannot are named with the reason."""
    makers: dict[str, Callable[[Path], ServerProcess]] = {}
    for name in wanted:
        missing: str | None = None
        if name == "published":
            missing = "ROOMZ_PUBLISHED_VENV not set" if venv is None else (
                None if (venv / "bin" / "python").exists() else f"no venv at {venv}")
        elif name == "node":
            missing = node_missing()
        if missing is not None:
            print(f"{name} server: skipped ({missing})")
            continue
        makers[name] = {
            "ours": lambda d: ours(emails, d),
            "ours-no-history": lambda d: ours(emails, d, history=False),
            "node": lambda d: node(emails, d),
            "published": lambda d: published(venv, emails, d),  # type: ignore[arg-type]
            "bare": lambda d: bare(emails, d),
        }[name]
    return makers


async def run(profile: Profile, rounds: int,
              servers: dict[str, Callable[[Path], ServerProcess]],
              emails: list[str]) -> dict[str, list[dict[str, float]]]:
    """Alternate the servers for ``rounds`` rounds; every figure of every run."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    with tempfile.TemporaryDirectory(prefix="roomz-bench-") as tmp:
        for n in range(1, rounds + 1):
            for name, make_server in servers.items():
                workdir = Path(tmp) / f"{name}-{n}"
                workdir.mkdir()
                figures = await bench_server(make_server(workdir), emails, profile)
                results[name].append(figures)
                print(f"round {n}/{rounds} {name:9} {summary(figures)}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the rounds, print the table; 1 only with ``--check`` and a failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds of every server (default 4, quick 1)")
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"which servers, comma-separated (default {','.join(SERVERS)}; "
                             f"also {','.join(EXTRA_SERVERS)})")
    parser.add_argument("--published-venv", type=Path,
                        default=os.environ.get("ROOMZ_PUBLISHED_VENV") or None,
                        help="venv holding roomz==0.4.0 (default: $ROOMZ_PUBLISHED_VENV)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    rounds = max(1, args.rounds or (1 if args.quick else 4))
    wanted = [name.strip() for name in args.servers.split(",") if name.strip()]
    if unknown := [name for name in wanted if name not in SERVERS + EXTRA_SERVERS]:
        parser.error(f"unknown server {unknown[0]!r}: "
                     f"choose from {', '.join(SERVERS + EXTRA_SERVERS)}")
    if "ours" not in wanted:
        parser.error("--servers must include ours: every figure is compared with it")
    emails = [f"bench-{i:03d}@example.com" for i in range(profile.memory_users)]
    servers = available_servers(emails, args.published_venv, wanted)
    print(f"server load: {rounds} round(s) of {', '.join(servers)}, "
          f"{'quick' if args.quick else 'full'}: "
          f"{profile.round_trips} round trips; fan-out {profile.fanout_users} users x "
          f"{profile.fanout_conns_per_user} conns x {profile.fanout_msgs_per_conn} msgs; memory "
          f"{profile.memory_users * profile.memory_conns_per_user} connections", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM unwinds like Ctrl-C
    try:
        results = asyncio.run(run(profile, rounds, servers, emails))
    except KeyboardInterrupt:
        print("server load: interrupted; servers stopped", file=sys.stderr)
        return 130
    passed = report(results)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
