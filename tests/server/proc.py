"""Run ``roomz-server`` as a real subprocess: a free loopback port, its own state dir, its log.

``async with ServerProcess(state_home=tmp_path) as proc:`` starts the command, waits until
``/healthz`` answers, and keeps every stderr line in ``proc.lines``; magic links that the
console mailer logs are found with ``await proc.next_link(email)``. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import aiohttp

from roomz.server.local import follow_magic_link, request_magic_link

#: The console script under test, from the same virtualenv as the running tests.
ROOMZ_SERVER = str(Path(sys.executable).with_name("roomz-server"))
if not os.path.exists(ROOMZ_SERVER):  # pragma: no cover - an unusual install layout
    ROOMZ_SERVER = shutil.which("roomz-server") or ROOMZ_SERVER

#: Settings the server reads from the environment; a test passes the ones it wants explicitly.
SETTING_VARS = re.compile(
    r"^(JWT_SECRET_KEY|ALLOWED_EMAILS|JWT_EXPIRY_DAYS|MAGIC_LINK_EXPIRY_MINUTES|"
    r"MAGIC_LINK_RATE_LIMIT|EMAIL_SENDER|SMTP_\w+|ROOMZ_\w+)$"
)
LISTENING = re.compile(r"listening on (?P<url>http://\S+)")
LINK = re.compile(
    r"magic link for (?P<email>\S+): (?P<url>http://\S+/auth/verify\?token=(?P<token>[\w-]+))"
)
SESSION_COOKIE = "session_token"
T = TypeVar("T")


@dataclass(frozen=True)
class LoggedLink:
    """A magic link as the console mailer wrote it to stderr."""

    email: str
    url: str
    token: str
    line: str


# Ports for servers started by tests come from each test process's own block, below the
# kernel's ephemeral range: a client's own end (ephemeral) or another pytest-xdist worker
# cannot take a port between the test choosing it and the server binding it.
PORT_BLOCK = 2_000
_next_port = itertools.count()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from this process's block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw0", "gw1", ... under xdist
    first = 10_000 + PORT_BLOCK * int(worker.removeprefix("gw"))
    for _ in range(PORT_BLOCK):
        port = first + next(_next_port) % PORT_BLOCK
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or still closing
            return port
    raise RuntimeError(f"no free port in {first}-{first + PORT_BLOCK - 1}")


def server_env(state_home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Roomz settings, with ``XDG_STATE_HOME=state_home``."""
    clean = {k: v for k, v in os.environ.items() if not SETTING_VARS.match(k)}
    clean["XDG_STATE_HOME"] = str(state_home)
    clean["COLUMNS"] = "100"  # stable --help wrapping
    clean.update(env or {})
    return clean


def run_command(*args: str, state_home: Path, env: Mapping[str, str] | None = None,
                timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run ``roomz-server ARGS`` to completion (for ``--help`` and refusals to start)."""
    return subprocess.run(
        [ROOMZ_SERVER, *args], env=server_env(state_home, env), capture_output=True,
        text=True, timeout=timeout, check=False,
    )


class StderrLines:
    """A subprocess's stderr, kept line by line as it comes, so that a test can wait on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._eof = False
        self._reader: asyncio.Task[None] | None = None

    def follow(self, stream: asyncio.StreamReader | None) -> None:
        """Start reading ``stream`` (the process's ``stderr``, opened with ``PIPE``); the
        lines of a process started again after the last one ended go on from there."""
        assert stream is not None, f"{self.name}: stderr is not a pipe"
        self._eof = False
        self._reader = asyncio.create_task(self._read(stream))

    @property
    def text(self) -> str:
        """Everything written so far."""
        return "\n".join(self.lines)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._eof = True
            self._changed.notify_all()

    async def wait_for(self, pattern: str | re.Pattern[str], *, after: int = 0,
                       timeout: float = 5.0) -> re.Match[str]:
        """The first line from ``lines[after:]`` matching ``pattern``, waiting for it."""
        regex = re.compile(pattern)
        return await self.wait_until(
            lambda: next((m for line in self.lines[after:] if (m := regex.search(line))), None),
            f"a line matching {regex.pattern!r}", timeout)

    async def wait_until(self, found: Callable[[], T | None], what: str,
                         timeout: float = 5.0) -> T:
        """What ``found()`` returns once it is not None, checked as each line comes."""
        async def wait() -> T:
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None or self._eof)
            result = found()
            if result is None:
                raise AssertionError(f"{self.name} ended without {what}:\n{self.text}")
            return result

        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {what} from {self.name} within {timeout} s:\n"
                                 f"{self.text}") from None

    async def ended(self, timeout: float) -> None:
        """Wait until the stream has ended (the process has exited)."""
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)

    def stop(self) -> None:
        """Stop reading (clean-up after a kill)."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()


class ServerProcess:
    """``roomz-server`` running in a subprocess; by default on 127.0.0.1 and a free port
    (``port`` picks it; ``pick_port=False`` leaves host and port to the server)."""

    def __init__(self, *args: str, state_home: Path, env: Mapping[str, str] | None = None,
                 port: int | None = None, pick_port: bool = True) -> None:
        self.port = port or (free_port() if pick_port else None)
        listen = ["--host", "127.0.0.1", "--port", str(self.port)] if self.port else []
        self.argv = [ROOMZ_SERVER, *listen, *args]
        self.env = server_env(state_home, env)
        self.log = StderrLines("roomz-server")
        self._process: asyncio.subprocess.Process | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL from the server's "listening on" log line."""
        if self._url is None:
            raise RuntimeError("the server has not started")
        return self._url

    @property
    def process(self) -> asyncio.subprocess.Process:
        """The running subprocess."""
        if self._process is None:
            raise RuntimeError("the server has not started")
        return self._process

    @property
    def lines(self) -> list[str]:
        """Every stderr line so far."""
        return self.log.lines

    @property
    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log.text

    async def wait_for_line(self, pattern: str | re.Pattern[str], *, after: int = 0,
                            timeout: float = 5.0) -> re.Match[str]:
        """The first stderr line from ``lines[after:]`` matching ``pattern``, waiting for it."""
        return await self.log.wait_for(pattern, after=after, timeout=timeout)

    async def next_link(self, email: str, *, after: int = 0, timeout: float = 5.0) -> LoggedLink:
        """The first magic link logged for ``email`` in ``lines[after:]``."""
        match = await self.wait_for_line(
            rf"magic link for {re.escape(email)}: .*", after=after, timeout=timeout
        )
        link = LINK.search(match.string)
        if link is None:
            raise AssertionError(f"malformed magic link line: {match.string!r}")
        return LoggedLink(email=link["email"], url=link["url"], token=link["token"],
                          line=match.string)

    async def request_link(self, email: str) -> LoggedLink:
        """Ask for a magic link over HTTP, as a client would, and read it from the log."""
        before = len(self.lines)
        await request_magic_link(self.url, email)
        return await self.next_link(email.strip().lower(), after=before)

    async def sign_in(self, email: str) -> str:
        """Sign ``email`` in over HTTP and return the ``session_token`` cookie's value."""
        link = await self.request_link(email)
        return await follow_magic_link(link.url)

    async def start(self, timeout: float = 10.0) -> None:
        """Start the command and return once ``GET /healthz`` answers ``{"status": "ok"}``."""
        self._process = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log.follow(self._process.stderr)
        deadline = time.monotonic() + timeout
        self._url = (await self.wait_for_line(LISTENING, timeout=timeout))["url"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while True:
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200 and await resp.json() == {"status": "ok"}:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if self.process.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError(f"roomz-server did not become healthy:\n{self.stderr}")
                await asyncio.sleep(0.05)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server process."""
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 5.0) -> int:
        """Wait for the process to exit and its stderr to end; return the exit code."""
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self.log.ended(timeout)
        return code

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Send ``sig`` and return the exit code once the process has ended."""
        self.send_signal(sig)
        return await self.wait(timeout)

    async def kill(self) -> None:
        """Make sure the process is gone (test clean-up)."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await asyncio.wait_for(self._process.wait(), 5)
        self.log.stop()

    async def __aenter__(self) -> ServerProcess:
        try:
            await self.start()
        except BaseException:
            await self.kill()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.kill()


class RestartableServer:
    """``roomz-server`` processes on one fixed port and JWT secret: kill one, start the next."""

    def __init__(self, state_home: Path) -> None:
        self.port = free_port()
        self.secret = secrets.token_urlsafe(40)
        self.state_home = state_home
        self.current: ServerProcess | None = None
        self.started: list[ServerProcess] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the same for every process."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ServerProcess:
        """Start a server on :attr:`port` and return once it answers ``/healthz``."""
        proc = ServerProcess(state_home=self.state_home, port=self.port,
                             env={"JWT_SECRET_KEY": self.secret})
        self.started.append(proc)
        await proc.start()
        self.current = proc
        return proc

    async def kill_all(self) -> None:
        """SIGKILL every process started here (clean-up)."""
        for proc in self.started:
            await proc.kill()

    async def __aenter__(self) -> RestartableServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.kill_all()
