"""Helpers for the headless runner's tests: ``roomz-cli --headless`` as a real process, its
config, a person to talk to it, and the operator ending sessions."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roomz.session_cache import SessionCache
from tests.server.proc import ROOMZ_SERVER, RestartableServer, StderrLines, server_env

from .helpers import SAMPLES, Watcher

ROOMZ_CLI = str(Path(sys.executable).with_name("roomz-cli"))
EMAIL = "tester@example.com"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d{3} ")


class Cli:
    """``roomz-cli`` running in a subprocess; its stderr lines kept as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log = StderrLines("roomz-cli")
        self.log.follow(process.stderr)

    @property
    def lines(self) -> list[str]:
        """Every stderr line so far."""
        return self.log.lines

    @property
    def stderr(self) -> str:
        """Everything written to stderr so far."""
        return self.log.text

    def matching(self, pattern: str) -> list[str]:
        """The stderr lines so far that match ``pattern``."""
        return [line for line in self.lines if re.search(pattern, line)]

    async def wait_for_line(self, pattern: str, timeout: float = 10.0, after: int = 0) -> str:
        """The first stderr line from ``lines[after:]`` matching ``pattern``, waiting for it."""
        return (await self.log.wait_for(pattern, timeout=timeout, after=after)).string

    async def wait(self, timeout: float = 15.0) -> int:
        """The exit status, once the process and its stderr have ended; AssertionError with
        what it wrote when it runs longer than ``timeout``."""
        try:
            status = await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"roomz-cli still runs after {timeout} s:\n{self.stderr}"
                                 ) from None
        await self.log.ended(timeout)
        return status

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig``; the exit status once the process has ended."""
        self.process.send_signal(sig)
        return await self.wait()

    async def kill(self) -> None:
        """Make sure the process is gone (clean-up)."""
        if self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 5)
        self.log.stop()


async def start_cli(config: Path) -> Cli:
    """``roomz-cli --headless --config PATH`` in a subprocess (kill it at the end)."""
    process = await asyncio.create_subprocess_exec(
        ROOMZ_CLI, "--headless", "--config", str(config), cwd=config.parent,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    return Cli(process)


def bot_config(folder: Path, server_url: str, session_file: Path,
               plugins: tuple[str, ...] = ("dice", "echo", "farewell.py"), *,
               client: str = "", more: str = "") -> Path:
    """A config with one bot, ``roller`` (by default dice, echo and farewell.py next to the
    config); ``client`` adds lines to ``[client]``, ``more`` adds tables at the end."""
    shutil.copy(SAMPLES / "farewell.py", folder / "farewell.py")
    path = folder / "bots.toml"
    names = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'''
[client]
server_url = "{server_url}"
session_cache_file = "{session_file}"
{client}

[[bots]]
name = "roller"
display_name = "Roller"
plugins = [{names}]
{more}''')
    return path


async def sign_in(server: RestartableServer, session_file: Path, email: str = EMAIL) -> None:
    """Keep a valid session of ``email`` for ``server`` in ``session_file``."""
    assert server.current is not None
    SessionCache(session_file).save(server.url, await server.current.sign_in(email))


async def signed_in_config(tmp_path: Path, server: RestartableServer, *, client: str = "",
                           more: str = "") -> Path:
    """A config whose session cache holds a valid session for ``server``."""
    session_file = tmp_path / "cache" / "session.json"
    await sign_in(server, session_file)
    return bot_config(tmp_path, server.url, session_file, client=client, more=more)


async def user_on(server: RestartableServer, watchers: Callable[..., Any],
                  email: str = EMAIL) -> Watcher:
    """A person signed in to ``server`` with a fresh magic link."""
    assert server.current is not None
    link = await server.current.request_link(email)
    watcher: Watcher = await watchers(server.url, link.token)
    return watcher


async def answered(user: Watcher, text: str, answer: str, timeout: float) -> None:
    """Send ``text`` every second until ``answer`` arrives (a bot that is coming back)."""
    async def ask() -> None:
        while answer not in user.texts:
            if user.client.connected:
                await user.client.send(text)
            for _ in range(50):
                if answer in user.texts:
                    return
                await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(ask(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {answer!r} within {timeout} s; saw {user.texts}") from None


async def end_sessions(email: str, server: RestartableServer) -> None:
    """``roomz-server end-sessions EMAIL`` on the records ``server`` keeps."""
    process = await asyncio.create_subprocess_exec(
        ROOMZ_SERVER, "end-sessions", email, env=server_env(server.state_home),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, err.decode()
