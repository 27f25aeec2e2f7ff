"""Client overhead: our ``send()`` against a bare python-socketio ``call()``, same server, same run.

Also times ``import roomz`` (fresh interpreter) and connecting with a cached session.
Each client sends its round trips back to back on one connection, so the server's
per-connection message rate is raised out of the way (``UNLIMITED_RATE``).
Run: ``./dev bench`` or ``.venv/bin/python benchmarks/client_roundtrip.py [--quick]``.
Target: send() round trip <= 1.10x the bare call().
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import UNLIMITED_RATE, bare_client, p99

from roomz import AsyncClient
from roomz.server.local import LocalServer

TARGET_RATIO = 1.10


async def bare_round_trips(url: str, session: str, count: int) -> list[float]:
    """Sequential ``call("message")`` round trips of a bare python-socketio client, in seconds."""
    sio = await bare_client(url, session)
    times = []
    try:
        for i in range(count):
            start = time.perf_counter()
            ack = await sio.call("message", {"content": f"bare {i}"}, timeout=5)
            times.append(time.perf_counter() - start)
            assert ack["status"] == "ok", ack
    finally:
        await sio.disconnect()
    return times


async def client_round_trips(client: AsyncClient, count: int) -> list[float]:
    """Sequential ``send()`` round trips of a connected Roomz client, in seconds."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        ack = await client.send(f"roomz {i}")
        times.append(time.perf_counter() - start)
        assert ack["status"] == "ok", ack
    return times


def import_time(runs: int) -> float:
    """Median wall time of ``python -c "import roomz"`` in a fresh interpreter, in seconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import roomz"], check=True)
        samples.append(time.perf_counter() - start)
    baseline = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    return statistics.median(samples) - statistics.median(baseline)


async def main(quick: bool) -> int:
    count = 500 if quick else 3000
    rounds = 2 if quick else 4
    async with LocalServer(**UNLIMITED_RATE) as server:
        # Two users, so neither client's messages fan out to the other's connection.
        session = await server.sign_in("bare@example.com")
        with tempfile.TemporaryDirectory(prefix="roomz-bench-") as scratch:
            cache = Path(scratch) / "session.json"
            link = await server.request_link("bench@example.com")
            client = AsyncClient(server.url, session_cache_file=cache)
            await client.connect(link.token)
            bare: list[float] = []
            ours: list[float] = []
            for _ in range(rounds):  # alternate, so drift on a shared machine hits both alike
                bare += await bare_round_trips(server.url, session, count)
                ours += await client_round_trips(client, count)
            await client.disconnect()

            connects = []
            for _ in range(5 if quick else 20):
                cached = AsyncClient(server.url, session_cache_file=cache)
                start = time.perf_counter()
                await cached.connect()
                connects.append(time.perf_counter() - start)
                await cached.disconnect()

    bare_median, ours_median = statistics.median(bare), statistics.median(ours)
    ratio = ours_median / bare_median
    print(f"sequential round trip, {len(ours)} messages each, server in-process:")
    print(f"  bare python-socketio call()  median {bare_median * 1e6:7.0f} us  "
          f"p99 {p99(bare) * 1e6:7.0f} us")
    print(f"  roomz AsyncClient.send()     median {ours_median * 1e6:7.0f} us  "
          f"p99 {p99(ours) * 1e6:7.0f} us")
    print(f"  ratio send()/call()          {ratio:.3f}  (target <= {TARGET_RATIO:.2f}: "
          f"{'PASS' if ratio <= TARGET_RATIO else 'FAIL'})")
    print(f"connect with a cached session: median {statistics.median(connects) * 1e3:.1f} ms")
    print(f"import roomz (fresh interpreter, minus bare startup): "
          f"{import_time(3 if quick else 10) * 1e3:.1f} ms")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
