"""Bot dispatch: a bot whose 20 plugins hear every message, against a bare client handler.

One in-process server on loopback (this process, on uvloop when installed, as roomz-server
runs). Two receivers, each in a process of its own on the default asyncio loop (as
``roomz-cli --headless`` runs bots), so that each one's CPU time is its own:

(a) ``bare``: a roomz ``AsyncClient`` with one ``on("message")`` handler counting messages;
(b) ``bot``: a ``roomz_bots.Bot`` with 20 in-memory plugins, each ``@hookimpl def
    on_message(message)`` adding one to its own counter, and no handler besides the bot's
    (a counting handler there too would charge the bot with the baseline's work as well).

Each receiver learns it is done by looking at its count every ``POLL_SECONDS`` (the bare
handler's, the last plugin's), the same cost in both; every plugin's count is checked then.

Both are connections of the same user, so both get every message, which a bare
python-socketio connection of that user sends, pipelined: at most ``WINDOW`` in flight,
bounded by count and time. First a live phase, both receivers handling messages as they
arrive (on 2 cores the sender and the server share one, so this pace is the sender's:
printed, not compared). Then rounds of:

- both receivers are stopped (SIGSTOP) while a backlog of messages is sent;
- they take turns of ``SLICE_SECONDS`` (SIGCONT, then SIGSTOP), one running while the other
  is stopped, each working its backlog off as fast as it can, until both are done. Which
  goes first alternates.

Nothing else limits a receiver working off its backlog, so this is the rate it can process
messages at, and the two drain the very same messages in interleaved turns: the load of a
shared machine hits both alike (draining one whole backlog after the other, rounds' ratios
spread several times wider). The target compares messages per CPU-second of the receivers,
bot >= 0.9 x bare, as the median over rounds of each round's ratio: a full garbage
collection (one every 20,000 messages or so) costs the round it lands in some 30%, in one
receiver, and the median does not let such a round decide. Receivers are started afresh
every ``ROUNDS_PER_PAIR`` rounds, so no one process's memory layout decides the figure.

Latency: a user (roomz ``AsyncClient``) sends ``!echo rN`` and waits for ``rN``, one at a
time, to a bot with the bundled ``echo`` plugin, and, as the baseline, to a bare client that
sends the text back from its handler. The bot's flood limit is a ``TokenBucket`` of 10^6
burst and 10^6 per second, so it never makes a reply wait (the default, 3 then 1/s, would).

The sender floods one connection by design, so the server's per-connection message rate is
raised out of the way (``UNLIMITED_RATE``: 10^6 a second, 10^6 at once).

Run: ``./dev bench`` or ``.venv/bin/python benchmarks/bot_dispatch.py [--quick] [--rounds N]``.
Exit status is 0 unless ``--check`` is given and the target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import UNLIMITED_RATE, bare_client, die_with_parent, p99, proc_stat

TARGET_RATIO = 0.9
PLUGINS = 20
WINDOW = 32  # messages in flight from the sender
EMAIL = "bench@example.com"
CHILD_TIMEOUT = 60.0  # seconds any single exchange with a receiver process may take
POLL_SECONDS = 0.002  # how often a receiver looks whether it has handled all it was sent
SLICE_SECONDS = 0.01  # each receiver's turn while both work off a backlog

COUNTER_PLUGIN = '''
"""Counts every message it hears."""
from roomz_bots import hookimpl

COUNT = 0


@hookimpl
def on_message(message):
    global COUNT
    COUNT += 1
'''


ROUNDS_PER_PAIR = 6  # backlog rounds before both receivers are started afresh


@dataclass(frozen=True)
class Profile:
    """How much a run does."""

    rounds: int = 30
    messages: int = 3000  # live, and per backlog
    send_limit_s: float = 30.0
    echoes: int = 500


FULL = Profile()
QUICK = Profile(rounds=4, messages=1000, send_limit_s=10.0, echoes=150)


# -- the receiver process -----------------------------------------------------------------

def counter_plugins(count: int) -> list[Any]:
    """``count`` plugins built in memory, each counting messages in its own module."""
    from roomz_bots import load_plugin

    plugins = []
    for i in range(count):
        module = types.ModuleType(f"bench_counter_{i:02d}")
        exec(compile(COUNTER_PLUGIN, f"<bench_counter_{i:02d}>", "exec"), module.__dict__)
        plugins.append(load_plugin(module))
    return plugins


async def receiver(mode: str, url: str, session_file: str) -> None:
    """Run one receiver; speak JSON lines on stdout, read the expected count from stdin."""
    from roomz import AsyncClient
    from roomz_bots import Bot, load_plugin
    from roomz_bots.flood import TokenBucket

    client = AsyncClient(url, session_cache_file=session_file)
    handled = 0
    me: dict[str, Any] = {}

    def count(data: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1

    async def echo_back(data: dict[str, Any]) -> None:
        content = data.get("content", "")
        if content.startswith("!echo ") and data.get("connection_id") != me.get("id"):
            await client.send(content[len("!echo "):])

    client.on("authenticated", lambda event: me.update(id=event.get("connection_id")))
    bot = None
    plugins: list[Any] = []
    if mode in ("bot", "echo-bot"):
        plugins = counter_plugins(PLUGINS) if mode == "bot" else [load_plugin("echo")]
        # Stores (none used here) go beside the session file, in the run's temporary folder.
        bot = Bot("bench", client, plugins, data_dir=Path(session_file).parent / "bot-data",
                  flood=TokenBucket(burst=10**6, per_second=1e6))
    if mode == "bare":
        client.on("message", count)
    elif mode == "echo-bare":
        client.on("message", echo_back)

    def so_far() -> int:
        return plugins[-1].module.COUNT if mode == "bot" else handled

    if bot is not None:
        await bot.start()
    else:
        await client.connect()

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    window_start = time.process_time()
    while (line := (await stdin.readline()).strip()) not in (b"quit", b""):
        # "K": report once K messages in all have been handled (the sender has sent them).
        target = int(line)
        deadline = time.monotonic() + CHILD_TIMEOUT
        while so_far() < target and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
        report = {"handled": so_far(), "cpu": time.process_time() - window_start,
                  "plugin_counts": sorted({p.module.COUNT for p in plugins}) if mode == "bot"
                  else [handled]}
        print(json.dumps(report), flush=True)
        window_start = time.process_time()
    if bot is not None:
        await bot.stop()
    else:
        await client.disconnect()


# -- the load generator -------------------------------------------------------------------

class Receiver:
    """A receiver process: start it, wait until it is connected, tell it what was sent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, url: str, session_file: Path) -> None:
        """Spawn the receiver and wait for it to say it is connected."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--receiver", self.mode, "--url", url,
            "--session-file", str(session_file),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(signal.SIGKILL))  # SIGKILL: it may be stopped
        await self._read()

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), CHILD_TIMEOUT)
        if not line:
            raise RuntimeError(f"receiver {self.mode} exited ({await self.proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    async def handled(self, total: int) -> dict[str, Any]:
        """The receiver's report once it has handled ``total`` messages since it started."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{total}\n".encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def pause(self) -> None:
        """Stop the process (SIGSTOP): messages queue up in the socket and the server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        for _ in range(500):  # the signal is asynchronous: wait (bounded) until it has stopped
            if proc_stat(self.proc.pid)[0] == "T":
                return
            await asyncio.sleep(0.002)
        raise RuntimeError(f"receiver {self.mode} did not stop")

    def resume(self) -> None:
        """Let the process run again (SIGCONT)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):  # it exited: reading it says so
            self.proc.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        """Ask the receiver to disconnect and exit; wait for it."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        await self.proc.stdin.drain()
        await asyncio.wait_for(self.proc.wait(), CHILD_TIMEOUT)

    def kill(self) -> None:
        """Kill the process if it is still there (after a failure)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


async def send_pipelined(sio: Any, count: int, limit_s: float) -> tuple[int, float]:
    """Send up to ``count`` messages, ``WINDOW`` in flight, for at most ``limit_s`` seconds.

    Returns how many were acknowledged and the seconds that took.
    """
    next_index = 0
    acked = 0
    start = time.monotonic()
    deadline = start + limit_s

    async def worker() -> None:
        nonlocal next_index, acked
        while next_index < count and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            ack = await sio.call("message", {"content": f"hello {i}"}, timeout=10)
            assert ack.get("status") == "ok", ack
            acked += 1

    await asyncio.gather(*(worker() for _ in range(WINDOW)))
    return acked, time.monotonic() - start


async def echo_latencies(url: str, session_file: Path, count: int) -> list[float]:
    """Seconds from a user's ``!echo rN`` to ``rN`` arriving back, one message at a time."""
    from roomz import AsyncClient

    user = AsyncClient(url, session_cache_file=session_file)
    waiting: dict[str, asyncio.Future[float]] = {}

    def arrived(data: dict[str, Any]) -> None:
        future = waiting.pop(data.get("content", ""), None)
        if future is not None and not future.done():
            future.set_result(time.monotonic())

    user.on("message", arrived)
    await user.connect()
    loop = asyncio.get_running_loop()
    times = []
    try:
        for i in range(count):
            future = waiting[f"r{i}"] = loop.create_future()
            start = time.monotonic()
            ack = await user.send(f"!echo r{i}")
            assert ack.get("status") == "ok", ack
            times.append(await asyncio.wait_for(future, 10) - start)
    finally:
        await user.disconnect()
    return times


@dataclass
class Figures:
    """One receiver's figures: a value per backlog round, and per pair for the live phase."""

    drain_cpu: list[float] = field(default_factory=list)
    live_cpu: list[float] = field(default_factory=list)


MODES = ("bare", "bot")


async def drain_in_turns(receivers: dict[str, Receiver], total: int,
                         order: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Let the stopped ``receivers`` take turns, in ``order``, until each has handled ``total``.

    Returns their reports by mode.
    """
    reports = {mode: asyncio.ensure_future(r.handled(total)) for mode, r in receivers.items()}
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while not all(report.done() for report in reports.values()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"receivers did not handle {total} messages in time")
            for mode in order:
                if reports[mode].done():
                    continue
                alone = all(r.done() for m, r in reports.items() if m != mode)
                receivers[mode].resume()
                # Its turn; once the other is done it may run to the end.
                await asyncio.wait({reports[mode]},
                                   timeout=max(0.0, deadline - time.monotonic()) if alone
                                   else SLICE_SECONDS)
                if not reports[mode].done():
                    await receivers[mode].pause()
    finally:
        for mode, report in reports.items():
            report.cancel()
            receivers[mode].resume()  # one may have finished just as its turn ended
    return {mode: report.result() for mode, report in reports.items()}


def check(mode: str, report: dict[str, Any], total: int) -> None:
    """Fail unless the receiver (and, in the bot, every plugin) handled all ``total``."""
    if report["handled"] != total or report["plugin_counts"] != [total]:
        raise AssertionError(f"{mode}: sent {total}, receiver reported {report}")


async def dispatch_pair(url: str, session_file: Path, sio: Any, profile: Profile, rounds: int,
                        figures: dict[str, Figures], live_rates: list[float]) -> None:
    """Start both receivers, a live phase, then ``rounds`` backlogs they drain in turns."""
    receivers = {mode: Receiver(mode) for mode in MODES}
    try:
        for receiver in receivers.values():
            await receiver.start(url, session_file)
        # Live: both handle messages as they arrive; the sender sets the pace.
        total, seconds = await send_pipelined(sio, profile.messages, profile.send_limit_s)
        live_rates.append(total / seconds)
        reports = {mode: await r.handled(total) for mode, r in receivers.items()}
        for mode, report in reports.items():
            check(mode, report, total)
            figures[mode].live_cpu.append(report["cpu"] / total)
        for _ in range(rounds):
            # Backlog: both are stopped while the messages are sent; then they take turns
            # working them off as fast as they can.
            for receiver in receivers.values():
                await receiver.pause()
            backlog, _ = await send_pipelined(sio, profile.messages, profile.send_limit_s)
            total += backlog
            first_up = len(figures["bare"].drain_cpu) % 2  # alternate across all rounds
            reports = await drain_in_turns(receivers, total,
                                           MODES if first_up == 0 else MODES[::-1])
            for mode, report in reports.items():
                check(mode, report, total)
                figures[mode].drain_cpu.append(report["cpu"] / backlog)
            bare, bot = figures["bare"].drain_cpu[-1], figures["bot"].drain_cpu[-1]
            print(f"  round {len(figures['bare'].drain_cpu):2}  backlog of {backlog}: "
                  f"bare {bare * 1e6:5.1f} us/msg  bot {bot * 1e6:5.1f} us/msg  "
                  f"ratio {bare / bot:.3f}", flush=True)
        for receiver in receivers.values():
            await receiver.stop()
    finally:
        for receiver in receivers.values():
            receiver.kill()


async def measure(profile: Profile, session_file: Path, figures: dict[str, Figures],
                  live_rates: list[float], latency: dict[str, list[float]]) -> None:
    """Run the dispatch rounds, then the latency rounds, against one in-process server."""
    from roomz.server.local import LocalServer
    from roomz.session_cache import SessionCache

    async with LocalServer(**UNLIMITED_RATE) as server:
        session = await server.sign_in(EMAIL)
        SessionCache(session_file).save(server.url, session)

        print(f"dispatch: {profile.messages} messages live, then {profile.rounds} backlogs of "
              f"{profile.messages}; receivers' CPU per message:", flush=True)
        sio = await bare_client(server.url, session)  # the sender
        try:
            left = profile.rounds
            while left > 0:
                rounds = min(left, ROUNDS_PER_PAIR)
                await dispatch_pair(server.url, session_file, sio, profile, rounds, figures,
                                    live_rates)
                left -= rounds
        finally:
            await sio.disconnect()

        for r in range(min(profile.rounds, 4)):
            for mode in ("echo-bare", "echo-bot") if r % 2 == 0 else ("echo-bot", "echo-bare"):
                receiver = Receiver(mode)
                try:
                    await receiver.start(server.url, session_file)
                    latency[mode] += await echo_latencies(server.url, session_file,
                                                          profile.echoes)
                    await receiver.stop()
                finally:
                    receiver.kill()


async def main(profile: Profile, check_target: bool) -> int:
    began = time.monotonic()
    figures = {mode: Figures() for mode in MODES}
    live_rates: list[float] = []
    latency: dict[str, list[float]] = {"echo-bare": [], "echo-bot": []}
    with tempfile.TemporaryDirectory(prefix="roomz-bench-") as scratch:
        await measure(profile, Path(scratch) / "session.json", figures, live_rates, latency)

    med = statistics.median
    bare, bot = figures["bare"], figures["bot"]
    ratio = med(b / x for b, x in zip(bare.drain_cpu, bot.drain_cpu, strict=True))
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    extra = med(bot.drain_cpu) - med(bare.drain_cpu)
    print(f"dispatch, medians of {profile.rounds} backlog rounds:")
    print("                                  backlog: msg/CPU-s  CPU/msg   live: CPU/msg")
    for label, f in (("(a) bare client handler", bare),
                     (f"(b) bot, {PLUGINS} on_message plugins", bot)):
        print(f"  {label:32} {1 / med(f.drain_cpu):8.0f} {med(f.drain_cpu) * 1e6:8.1f} us "
              f"  {med(f.live_cpu) * 1e6:9.1f} us")
    print(f"  bot's extra CPU per message      {extra * 1e6:5.1f} us "
          f"({extra / PLUGINS * 1e6:.2f} us per plugin)")
    print(f"  ratio b/a, backlog msg/CPU-s     {ratio:.4f} (median of the rounds' ratios; "
          f"target >= {TARGET_RATIO:.2f}: {verdict})")
    print(f"  ratio of the medians             {med(bare.drain_cpu) / med(bot.drain_cpu):.3f}")
    print(f"  live: {med(live_rates):.0f} msg/s, paced by the sender; ratio b/a of CPU per "
          f"message {med(bare.live_cpu) / med(bot.live_cpu):.3f}")
    print(f"echo latency, user's '!echo rN' until 'rN' arrives, {len(latency['echo-bot'])} "
          f"each, one at a time; bot flood limit 10^6/s:")
    for mode, label in (("echo-bare", "bare client echoing back"),
                        ("echo-bot", "bot with the echo plugin")):
        print(f"  {label:32} median {med(latency[mode]) * 1e6:5.0f} us  "
              f"p99 {p99(latency[mode]) * 1e6:5.0f} us")
    print(f"  ratio bot/bare, median           "
          f"{med(latency['echo-bot']) / med(latency['echo-bare']):.3f}")
    print(f"runtime {time.monotonic() - began:.1f} s")
    return 1 if check_target and ratio < TARGET_RATIO else 0


def run(coro: Any) -> Any:
    """Run on uvloop when it is installed (as roomz-server does), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    parser.add_argument("--rounds", type=int,
                        help=f"backlog rounds (default {FULL.rounds}, quick {QUICK.rounds})")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target fails")
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--session-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(receiver(args.receiver, args.url, args.session_file))
        sys.exit(0)
    chosen = QUICK if args.quick else FULL
    if args.rounds:
        chosen = dataclasses.replace(chosen, rounds=args.rounds)
    sys.exit(run(main(chosen, args.check)))
