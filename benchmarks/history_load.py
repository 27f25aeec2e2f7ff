"""Message history: what keeping it costs the server, where its memory levels off, and how
long a 1,000-message replay takes.

Our server runs as a subprocess with history on and with ``--no-history``, in alternating
rounds (on, off, on, off, ...), so drift on a shared machine hits both alike:

1. CPU: the fan-out of ``server_load.py`` (users x connections, each connection keeping one
   ``message`` call in flight) -> the server's own CPU time per acknowledged message, on
   against off; the target is a ratio of at most 1.15 (median of the rounds' ratios).
2. Memory: one user sends 5 windows' worth of messages (window: ``--history-messages``
   1000) -> the server's RSS and the history file's size after each window: both level off.
3. Replay: a connection comes back after missing 1,000 messages -> time from its connect
   to the last replayed message (median of 5).

``--quick``: one round, smaller loads. Exit status is 0 unless ``--check`` is given and the
CPU target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from server_load import FULL, QUICK, Profile, ServerProcess, close_all, measure_fan_out, open_all
from server_load import ours as our_server

CPU_TARGET = 1.15
WINDOW = 1000


def server(emails: list[str], workdir: Path, history: bool) -> ServerProcess:
    """Our server, with history on (a window of :data:`WINDOW`) or off."""
    made = our_server(emails, workdir)
    made.argv += ["--history-messages", str(WINDOW)] if history else ["--no-history"]
    return made


async def signed_in(made: ServerProcess, emails: list[str]) -> list[str]:
    """Start ``made`` and sign every email in; their session JWTs."""
    await made.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        return [await made.sign_in(http, email) for email in emails]


async def cpu_round(emails: list[str], workdir: Path, history: bool,
                    profile: Profile) -> dict[str, float]:
    """The fan-out against a fresh server with history on or off."""
    made = server(emails, workdir, history)
    try:
        jwts = await signed_in(made, emails[:profile.fanout_users])
        return await measure_fan_out(made, jwts, profile)
    finally:
        made.stop()


async def memory_plateau(emails: list[str], workdir: Path, windows: int) -> list[tuple[int, int]]:
    """(RSS KB, history file KB) after each window's worth of messages from one user."""
    made = server(emails, workdir, history=True)
    samples = []
    try:
        (jwt,) = await signed_in(made, emails[:1])
        (client,) = await open_all(made.url, [jwt])
        history_file = workdir / "state" / "roomz" / "history.sqlite3"
        try:
            for window in range(windows):
                for i in range(WINDOW):
                    await client.send(f"window {window} message {i} " + "x" * 200)
                samples.append((made.rss_kb(), _size_kb(history_file)))
                print(f"after {(window + 1) * WINDOW:>5} messages: server RSS "
                      f"{samples[-1][0]:,} KB, history file {samples[-1][1]:,} KB", flush=True)
        finally:
            await close_all([client])
    finally:
        made.stop()
    return samples


def _size_kb(path: Path) -> int:
    """The file and its write-ahead log, in KB."""
    wal = path.with_name(path.name + "-wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists()) // 1024


async def replay_times(emails: list[str], workdir: Path, count: int, times: int) -> list[float]:
    """Seconds from connect to the last of ``count`` replayed messages, ``times`` times."""
    made = server(emails, workdir, history=True)
    measured = []
    try:
        (jwt,) = await signed_in(made, emails[:1])
        (sender,) = await open_all(made.url, [jwt])
        try:
            for _ in range(times):
                cursor = await _cursor_now(made.url, jwt)
                for i in range(count):
                    await sender.send(f"missed {i} " + "x" * 100)
                measured.append(await _replayed_in(made.url, jwt, cursor, count))
        finally:
            await close_all([sender])
    finally:
        made.stop()
    return measured


async def _cursor_now(url: str, jwt: str) -> str:
    """Where the user's history ends now (what a fresh connection is told)."""
    sio = socketio.AsyncClient(reconnection=False)
    greeted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    sio.on("authenticated", lambda data: greeted.done() or greeted.set_result(data))
    await sio.connect(url, headers={"Cookie": f"session_token={jwt}"},
                      transports=["websocket"], auth={"history": {"after": None}})
    try:
        return str((await asyncio.wait_for(greeted, 10))["history"]["cursor"])
    finally:
        await sio.disconnect()


async def _replayed_in(url: str, jwt: str, cursor: str, count: int) -> float:
    """Connect after ``cursor``; seconds until ``count`` replayed messages have arrived."""
    sio = socketio.AsyncClient(reconnection=False)
    arrived = 0
    done = asyncio.Event()

    def on_replay(data: Any) -> None:
        nonlocal arrived
        arrived += len(data["messages"])
        if arrived >= count:
            done.set()

    sio.on("replay", on_replay)
    start = time.perf_counter()
    await sio.connect(url, headers={"Cookie": f"session_token={jwt}"},
                      transports=["websocket"], auth={"history": {"after": cursor}})
    try:
        await asyncio.wait_for(done.wait(), 30)
        return time.perf_counter() - start
    finally:
        await sio.disconnect()


async def run(profile: Profile, rounds: int, windows: int, replays: int) -> bool:
    """Every phase; prints the figures and returns whether the CPU target holds."""
    emails = [f"bench-{i:03d}@example.com" for i in range(profile.fanout_users)]
    ratios, on_cpu, off_cpu = [], [], []
    with tempfile.TemporaryDirectory(prefix="roomz-history-bench-") as tmp:
        for n in range(1, rounds + 1):
            figures = {}
            for history in (True, False) if n % 2 else (False, True):
                workdir = Path(tmp) / f"cpu-{n}-{'on' if history else 'off'}"
                workdir.mkdir()
                figures[history] = await cpu_round(emails, workdir, history, profile)
                f = figures[history]
                print(f"round {n}/{rounds} history {'on ' if history else 'off'} "
                      f"{f['cpu_per_msg']:.1f} us CPU/msg, {f['throughput']:.0f} msg/s, "
                      f"lost {f['lost']:.0f}, dup {f['duplicated']:.0f}", flush=True)
            on_cpu.append(figures[True]["cpu_per_msg"])
            off_cpu.append(figures[False]["cpu_per_msg"])
            ratios.append(on_cpu[-1] / off_cpu[-1])
        ratio = statistics.median(ratios)
        print(f"server CPU per acked message: history on {statistics.median(on_cpu):.1f} us, "
              f"off {statistics.median(off_cpu):.1f} us; ratio {ratio:.3f} (rounds: "
              f"{', '.join(f'{r:.3f}' for r in ratios)}); target <= {CPU_TARGET}: "
              f"{'PASS' if ratio <= CPU_TARGET else 'FAIL'}", flush=True)
        workdir = Path(tmp) / "memory"
        workdir.mkdir()
        samples = await memory_plateau(emails, workdir, windows)
        growth = samples[-1][0] - samples[1][0] if len(samples) > 1 else 0
        print(f"memory: RSS after window 2 -> {windows}: {growth:+,} KB; history file "
              f"{samples[1][1] if len(samples) > 1 else 0:,} -> {samples[-1][1]:,} KB")
        workdir = Path(tmp) / "replay"
        workdir.mkdir()
        times = await replay_times(emails, workdir, WINDOW, replays)
        print(f"replay of {WINDOW} messages on reconnect: median "
              f"{statistics.median(times) * 1000:.0f} ms (runs: "
              f"{', '.join(f'{t * 1000:.0f}' for t in times)} ms)")
    return ratio <= CPU_TARGET


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run; 1 only with ``--check`` and the CPU target failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds of on+off (default 4, quick 1)")
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target fails")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    rounds = max(1, args.rounds or (1 if args.quick else 4))
    passed = asyncio.run(run(profile, rounds, windows=3 if args.quick else 5,
                             replays=2 if args.quick else 5))
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
