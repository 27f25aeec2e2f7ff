"""Terminal startup: `roomz-cli --help`, and `roomz-cli -s URL` to its prompt on a cached session.

Whole processes, timed from the parent, median of several runs; a bare ``python -c pass`` is
measured in the same run as the floor. The prompt is timed in a pseudo-terminal (pexpect), up to
the ``>`` drawn after the prompt's cursor position request; the server is a Roomz server
in a thread of this process, and the session is in the default cache file
(``$XDG_CACHE_HOME/roomz/session.json``), so nothing is typed.
Run: ``./dev bench`` or ``.venv/bin/python benchmarks/cli_startup.py [--quick] [--check]``.
Target: under 0.5 s each. When one fails, ``python -X importtime`` shows what dominates.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from unittest import mock

import pexpect

from roomz.server.testing import ThreadedServer
from roomz.session_cache import SessionCache, default_session_file

T = TypeVar("T")

TARGET_SECONDS = 0.5
ROOMZ_CLI = str(Path(sys.executable).parent / "roomz-cli")
CPR_REQUEST = "\x1b[6n"  # a prompt_toolkit prompt asks where the cursor is as it is drawn
EMAIL = "bench@example.com"


@contextmanager
def isolated_home() -> Iterator[dict[str, str]]:
    """An environment whose state, cache and data directories are fresh temporary ones."""
    with tempfile.TemporaryDirectory(prefix="roomz-bench-") as home:
        env = dict(os.environ)
        env.update(HOME=home, TERM="xterm",
                   **{v: str(Path(home) / v.lower()) for v in
                      ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")})
        yield env


def default_cache_file(env: dict[str, str]) -> Path:
    """Where ``roomz-cli`` run with ``env`` looks for sessions (``default_session_file``)."""
    with mock.patch.dict(os.environ, XDG_CACHE_HOME=env["XDG_CACHE_HOME"]):
        return default_session_file()


def median_of(runs: int, once: Callable[[], float]) -> tuple[float, list[float]]:
    """The median of ``runs`` calls of ``once`` (each returns seconds), and every sample."""
    once()  # warm the OS file cache and the bytecode caches: every later run starts alike
    samples = [once() for _ in range(runs)]
    return statistics.median(samples), samples


def time_process(argv: list[str], env: dict[str, str]) -> float:
    """Seconds a process takes from start to exit (output captured, status 0 required)."""
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - start


def time_prompt(url: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from starting ``roomz-cli -s URL`` to 'Connected to', and to its prompt drawn.

    The terminal is quit with Ctrl-D afterwards (status 0 required), outside the timing.
    """
    start = time.perf_counter()
    child = pexpect.spawn(ROOMZ_CLI, ["-s", url], env=env, dimensions=(30, 120),
                          encoding="utf-8", timeout=30)
    child.delaybeforesend = None
    try:
        child.expect("Connected to ")
        connected = time.perf_counter() - start
        child.expect(re.escape(CPR_REQUEST))  # the prompt is drawn right after asking
        child.expect(">")
        prompt = time.perf_counter() - start
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    if child.exitstatus != 0:
        raise RuntimeError(f"roomz-cli exited with {child.exitstatus} (signal "
                           f"{child.signalstatus}); output: {child.before!r}")
    return connected, prompt


def import_profile(argv: list[str], env: dict[str, str], top: int = 15) -> list[str]:
    """The slowest imports of ``python -X importtime ARGV`` by cumulative time, any depth,
    indented as nested, as printable lines."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env,
                          capture_output=True, text=True, timeout=60)
    rows: list[tuple[int, int, str]] = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*\S+)", line)
        if match:
            rows.append((int(match.group(2)), int(match.group(1)), match.group(3)))
    total = sum(cum for cum, _, name in rows if not name.startswith(" "))
    rows.sort(reverse=True)
    lines = [f"    all imports: {total / 1e3:.0f} ms"]
    lines += [f"    {cum / 1e3:7.1f} ms cumulative {own / 1e3:6.1f} ms self  {name}"
              for cum, own, name in rows[:top]]
    return lines


def verdict(seconds: float) -> str:
    """PASS or FAIL against the target."""
    return "PASS" if seconds < TARGET_SECONDS else "FAIL"


def main() -> int:
    """Time the three figures, print them with the target, profile imports of a failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for CI (3 runs)")
    parser.add_argument("--runs", type=int, help="runs of each figure (default 10, quick 3)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--profile", action="store_true",
                        help="print the import profile even when the targets pass")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 10)

    with isolated_home() as env, ThreadedServer() as server:
        cache = default_cache_file(env)
        SessionCache(cache).save(server.url, server.sign_in(EMAIL))
        baseline, _ = median_of(runs, lambda: time_process([sys.executable, "-c", "pass"], env))
        help_time, help_samples = median_of(runs, lambda: time_process([ROOMZ_CLI, "--help"],
                                                                        env))
        pairs: list[tuple[float, float]] = []
        time_prompt(server.url, env)  # warm-up, as for the others
        for _ in range(runs):
            pairs.append(time_prompt(server.url, env))
        connected = statistics.median(p[0] for p in pairs)
        prompt = statistics.median(p[1] for p in pairs)

        print(f"roomz-cli startup, whole process, median of {runs} runs "
              f"(target: under {TARGET_SECONDS:g} s each):")
        print(f"  baseline: python -c pass                       {baseline:6.3f} s")
        print(f"  roomz-cli --help                               {help_time:6.3f} s  "
              f"{verdict(help_time)}  (min {min(help_samples):.3f}, max {max(help_samples):.3f})")
        print(f"  roomz-cli -s URL, cached session: 'Connected'  {connected:6.3f} s")
        print(f"  roomz-cli -s URL, cached session: prompt       {prompt:6.3f} s  "
              f"{verdict(prompt)}  (min {min(p[1] for p in pairs):.3f}, "
              f"max {max(p[1] for p in pairs):.3f})")
        print(f"  session cache: {cache}  (XDG_CACHE_HOME={env['XDG_CACHE_HOME']})")

        passed = help_time < TARGET_SECONDS and prompt < TARGET_SECONDS
        if help_time >= TARGET_SECONDS or args.profile:
            print("imports of roomz-cli --help (python -X importtime -m roomz.cli --help):")
            print("\n".join(import_profile(["-m", "roomz.cli", "--help"], env)))
        if prompt >= TARGET_SECONDS or args.profile:
            print("imports on the way to the prompt (python -X importtime -c "
                  "'import roomz.cli.app'):")
            print("\n".join(import_profile(["-c", "import roomz.cli.app"], env)))
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
