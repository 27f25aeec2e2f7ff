"""What several benchmark scripts share (``run_all.py`` skips files whose names start with _)."""

from __future__ import annotations

import ctypes
import signal
import statistics
from collections.abc import Callable
from pathlib import Path

import socketio

PR_SET_PDEATHSIG = 1
#: Benchmarks flood one connection on purpose: the server's per-connection message rate
#: (default 100 a second, 500 at once) is raised out of the measurement's way.
FLOOD_RATE = 1_000_000
UNLIMITED_RATE = {"message_rate": float(FLOOD_RATE), "message_burst": FLOOD_RATE}


def p99(values: list[float]) -> float:
    """The 99th percentile of ``values``."""
    return statistics.quantiles(values, n=100)[98]


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when the benchmark dies without cleaning up."""
    def arrange() -> None:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, sig)
    return arrange


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: ``[0]`` is the state."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


async def bare_client(url: str, session: str) -> socketio.AsyncClient:
    """A bare python-socketio connection signed in with ``session``, over WebSocket."""
    sio = socketio.AsyncClient()
    await sio.connect(url, headers={"Cookie": f"session_token={session}"},
                      transports=["websocket"], wait_timeout=5)
    return sio
