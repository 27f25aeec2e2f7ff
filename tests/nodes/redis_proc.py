"""A real ``redis-server`` (Debian's package) on a free loopback port, started per test."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.server.proc import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisProcess:
    """``redis-server`` without persistence; ``kill()`` and ``start()`` again on the same port.

    ``persistent_dir``: with an append-only file there, fsynced at every write, as a
    deployment that keeps message history should run it; a restart then loses nothing.
    """

    def __init__(self, persistent_dir: Path | None = None) -> None:
        self.port = free_port()
        self.persistent_dir = persistent_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 10.0) -> None:
        """Start Redis and return once it answers PING."""
        keeping = ["--appendonly", "no"] if self.persistent_dir is None else [
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.persistent_dir)]
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *keeping], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), 1)
                writer.write(b"PING\r\n")
                answer = await asyncio.wait_for(reader.readline(), 1)
                writer.close()
                if answer.startswith(b"+PONG"):
                    return
            except (OSError, asyncio.TimeoutError):  # distinct errors before Python 3.11
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL Redis, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    async def __aenter__(self) -> RedisProcess:
        if not Path(REDIS_SERVER).exists():
            raise AssertionError("redis-server is not installed: run ./dev setup")
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.kill()
