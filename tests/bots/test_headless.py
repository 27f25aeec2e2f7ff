"""The headless runner: ``roomz-cli --headless --config FILE`` as a real process, and run_bots."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from roomz.server.testing import LocalServer
from roomz.session_cache import SessionCache
from roomz_bots.config import load_config
from roomz_bots.runner import build_bot, run_bots
from tests.server.proc import RestartableServer, StderrLines

from .helpers import SAMPLES, TIMEOUT, Watcher, wait_until

REPO = Path(__file__).resolve().parents[2]
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

    async def wait_for_line(self, pattern: str, timeout: float = 10.0) -> str:
        """The first stderr line matching ``pattern``, waiting for it."""
        return (await self.log.wait_for(pattern, timeout=timeout)).string

    async def wait(self, timeout: float = 15.0) -> int:
        """The exit status, once the process and its stderr have ended."""
        status = await asyncio.wait_for(self.process.wait(), timeout)
        await self.log.ended(timeout)
        return status

    async def kill(self) -> None:
        """Make sure the process is gone (clean-up)."""
        if self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 5)
        self.log.stop()


@pytest.fixture
async def start_cli() -> AsyncIterator[Callable[..., Any]]:
    """``await start_cli(config_path)``: ``roomz-cli --headless --config PATH`` in a subprocess."""
    started: list[Cli] = []

    async def start(config: Path) -> Cli:
        process = await asyncio.create_subprocess_exec(
            ROOMZ_CLI, "--headless", "--config", str(config), cwd=config.parent,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cli = Cli(process)
        started.append(cli)
        return cli

    yield start
    for cli in started:
        await cli.kill()


def bot_config(folder: Path, server_url: str, session_file: Path,
               plugins: tuple[str, ...] = ("dice", "farewell.py")) -> Path:
    """A config with one bot, ``roller`` (dice, and farewell.py next to the config)."""
    shutil.copy(SAMPLES / "farewell.py", folder / "farewell.py")
    path = folder / "bots.toml"
    names = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'''
[client]
server_url = "{server_url}"
session_cache_file = "{session_file}"

[[bots]]
name = "roller"
display_name = "Roller"
plugins = [{names}]
''')
    return path


async def signed_in_config(tmp_path: Path, server: RestartableServer) -> Path:
    """A config whose session cache holds a valid session for ``server``."""
    assert server.current is not None
    session_file = tmp_path / "cache" / "session.json"
    SessionCache(session_file).save(server.url, await server.current.sign_in(EMAIL))
    return bot_config(tmp_path, server.url, session_file)


async def user_on(server: RestartableServer, watchers: Callable[..., Any]) -> Watcher:
    """A person signed in to ``server`` with a fresh magic link."""
    assert server.current is not None
    link = await server.current.request_link(EMAIL)
    watcher: Watcher = await watchers(server.url, link.token)
    return watcher


def rolls_from_roller(user: Watcher) -> list[str]:
    """The dice the bot rolled, as the user saw them."""
    return [m.text for _, m in user.seen
            if m.display_name == "Roller" and m.text.startswith("🎲 1d6: ")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_headless_bot_answers_then_stops_cleanly_on_a_signal(
        tmp_path: Path, server_process: RestartableServer, start_cli: Callable[..., Any],
        watchers: Callable[..., Any], sig: signal.Signals) -> None:
    """A cached session: it answers ``!roll``; on the signal, shutdown hooks run, exit status 0."""
    cli: Cli = await start_cli(await signed_in_config(tmp_path, server_process))
    await cli.wait_for_line(r"bot roller is running")
    user = await user_on(server_process, watchers)

    await user.client.send("!roll")
    await wait_until(lambda: len(rolls_from_roller(user)) == 1,
                     what=lambda: f"a roll; saw {user.texts}")

    cli.process.send_signal(sig)
    assert await cli.wait() == 0, cli.stderr
    await user.wait_for_text("Goodbye from roller")
    assert any("farewell: shutdown hook ran for roller" in line for line in cli.lines)
    assert all(STAMPED.match(line) for line in cli.lines if line), cli.stderr
    assert "Traceback" not in cli.stderr


@pytest.mark.parametrize("plugins", [("dice",), ("dice", "farewell.py")],
                         ids=["dice", "dice+farewell"])
async def test_without_a_session_it_exits_promptly_with_a_clear_message(
        tmp_path: Path, server: LocalServer, start_cli: Callable[..., Any],
        plugins: tuple[str, ...]) -> None:
    """No session cached: a prompt non-zero exit and a message saying to sign in, no traceback."""
    # farewell.py sends from its shutdown hook: a bot that never connected must not wait for it.
    config = bot_config(tmp_path, server.url, tmp_path / "no-session.json", plugins)
    cli: Cli = await start_cli(config)
    try:
        status = await cli.wait(timeout=5)
    except asyncio.TimeoutError:
        raise AssertionError(f"still running after 5 s:\n{cli.stderr}") from None

    assert status != 0
    assert re.search(r"roller cannot sign in .*Sign in first", cli.stderr), cli.stderr
    assert "Traceback" not in cli.stderr


async def test_the_headless_bot_rides_out_a_server_restart(
        tmp_path: Path, server_process: RestartableServer, start_cli: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """The server is killed and started again on the same port and secret: the bot answers again."""
    cli: Cli = await start_cli(await signed_in_config(tmp_path, server_process))
    await cli.wait_for_line(r"bot roller is running")
    user = await user_on(server_process, watchers)
    await user.client.send("!roll")
    await wait_until(lambda: len(rolls_from_roller(user)) == 1,
                     what=lambda: f"a roll; saw {user.texts}")
    await user.client.disconnect()

    assert server_process.current is not None
    await server_process.current.kill()
    await server_process.start()
    user = await user_on(server_process, watchers)

    async def ask_until_answered() -> None:
        while not rolls_from_roller(user):
            await user.client.send("!roll")
            with contextlib.suppress(AssertionError):
                await wait_until(lambda: bool(rolls_from_roller(user)), 1.0)

    await asyncio.wait_for(ask_until_answered(), 20)
    assert cli.process.returncode is None
    cli.process.send_signal(signal.SIGTERM)
    assert await cli.wait() == 0, cli.stderr
    assert "Traceback" not in cli.stderr


async def test_run_bots_starts_every_bot_even_when_a_plugin_fails_to_import(
        tmp_path: Path, server: LocalServer, watchers: Callable[..., Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """Two bots of one config in one process; a broken plugin is logged, everything else runs."""
    session_file = tmp_path / "session.json"
    SessionCache(session_file).save(server.url, await server.sign_in(EMAIL))
    path = tmp_path / "bots.toml"
    path.write_text(f'''
[client]
server_url = "{server.url}"
session_cache_file = "{session_file}"

[[bots]]
name = "roller"
display_name = "Roller"
plugins = ["dice", "tests.bots.sample_plugins.broken"]

[[bots]]
name = "parrot"
display_name = "Parrot"
prefix = "?"
plugins = ["echo"]
''')
    config = load_config(path)
    bots = [build_bot(config, bot, data_dir=tmp_path / "data") for bot in config.bots]
    stop = asyncio.Event()
    running = asyncio.create_task(run_bots(bots, stop))
    try:
        await wait_until(lambda: all(b.client.connected for b in bots) or running.done(),
                         TIMEOUT, "both bots to connect")
        user = await watchers(server.url, (await server.request_link(EMAIL)).token)

        await user.client.send("!roll")
        await user.client.send("?echo polly")
        roll = await user.wait_for(lambda m: m.display_name == "Roller", what="a roll")
        echo = await user.wait_for(lambda m: m.display_name == "Parrot", what="an echo")
        assert roll.text.startswith("🎲 1d6: ")
        assert echo.text == "polly"
        await user.client.disconnect()
    finally:
        stop.set()
        assert await asyncio.wait_for(running, TIMEOUT * 3) == 0

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("roller" in e and "broken" in e and "roomz_no_such_dependency" in e
               for e in errors), errors
