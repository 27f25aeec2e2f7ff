"""The headless runner: ``roomz-cli --headless --config FILE`` as a real process.

Outages of any length are in ``test_runner_outages.py``; the host it runs the bots with is
tested on its own in ``test_host.py``.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from roomz.server.local import LocalServer
from roomz_bots.runner import EXIT_STATUSES
from tests.server.proc import RestartableServer

from .headless import (
    ROOMZ_CLI,
    STAMPED,
    Cli,
    answered,
    bot_config,
    signed_in_config,
    user_on,
)
from .helpers import Watcher, wait_until


def rolls_from_roller(user: Watcher) -> list[str]:
    """The dice the bot rolled, as the user saw them."""
    return [m.text for _, m in user.seen
            if m.display_name == "Roller" and m.text.startswith("🎲 1d6: ")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_headless_bot_answers_then_stops_cleanly_on_a_signal(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any], sig: signal.Signals) -> None:
    """A cached session: it answers ``!roll``; on the signal, shutdown hooks run, one line
    says the bot stopped, exit status 0."""
    cli: Cli = await headless(await signed_in_config(tmp_path, server_process))
    await cli.wait_for_line(r"bot roller is running")
    user = await user_on(server_process, watchers)

    await user.client.send("!roll")
    await wait_until(lambda: len(rolls_from_roller(user)) == 1,
                     what=lambda: f"a roll; saw {user.texts}")

    assert await cli.stop(sig) == 0, cli.stderr
    await user.wait_for_text("Goodbye from roller")
    assert any("farewell: shutdown hook ran for roller" in line for line in cli.lines)
    assert len(cli.matching(r"bot roller stopped$")) == 1, cli.stderr
    assert all(STAMPED.match(line) for line in cli.lines if line), cli.stderr
    assert "Traceback" not in cli.stderr


@pytest.mark.parametrize("plugins", [("dice",), ("dice", "farewell.py")],
                         ids=["dice", "dice+farewell"])
async def test_without_a_session_it_exits_1_at_once_saying_how_to_sign_in(
        tmp_path: Path, server: LocalServer, headless: Callable[..., Any],
        plugins: tuple[str, ...]) -> None:
    """No session cached: exit status 1 within seconds, and one line saying that no one is
    signed in and how to sign in from the terminal (this config's session file is not the
    terminal's default, so the command names the config); no traceback."""
    # farewell.py sends from its shutdown hook: a bot that never connected must not wait for it.
    session_file = tmp_path / "no-session.json"
    config = bot_config(tmp_path, server.url, session_file, plugins)
    cli: Cli = await headless(config)
    assert await cli.wait(timeout=5) == 1, cli.stderr
    (line,) = cli.matching("bot roller stopped")
    assert line.endswith(
        f"ERROR roomz_bots: bot roller stopped: not signed in to {server.url} (no session in "
        f"{session_file}). Sign in first: roomz-cli --config {config}, then /login "
        "you@example.com"), line
    assert cli.matching(r"ERROR roomz_bots: the session of bot roller was refused: exiting "
                        r"with status 1$"), cli.stderr
    assert "Traceback" not in cli.stderr
    assert "login(email)" not in cli.stderr and "connect()" not in cli.stderr


async def test_the_headless_bot_rides_out_a_server_restart(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """The server is killed and started again on the same port and secret: the bot answers
    again, and says once that it lost its connection and once that it is back."""
    cli: Cli = await headless(await signed_in_config(tmp_path, server_process))
    await cli.wait_for_line(r"bot roller is running")
    user = await user_on(server_process, watchers)
    await user.client.send("!roll")
    await wait_until(lambda: len(rolls_from_roller(user)) == 1,
                     what=lambda: f"a roll; saw {user.texts}")
    await user.client.disconnect()

    assert server_process.current is not None
    await server_process.current.kill()
    await cli.wait_for_line(r"WARNING roomz_bots: bot roller lost its connection to "
                            rf"{re.escape(server_process.url)}; reconnecting")
    await server_process.start()
    user = await user_on(server_process, watchers)
    await answered(user, "!echo again", "again", timeout=20)
    await cli.wait_for_line(r"INFO roomz_bots: bot roller is back after \d+ s$")
    assert cli.process.returncode is None
    assert await cli.stop() == 0, cli.stderr
    assert len(cli.matching("lost its connection")) == 1, cli.stderr
    assert len(cli.matching("is back after")) == 1, cli.stderr
    assert not cli.matching("roomz.client"), cli.stderr  # the bot's line says it, once
    assert "Traceback" not in cli.stderr


def test_help_documents_the_exit_statuses() -> None:
    """The runner's exit statuses, as ``roomz-cli --help`` should show them, name all three."""
    for status in ("0  stopped by Ctrl-C (SIGINT) or SIGTERM",
                   "1  the server refused a bot's session",
                   "2  a mistake in the command line or the config file"):
        assert status in EXIT_STATUSES
    assert "/login you@example.com" in EXIT_STATUSES


def test_a_config_mistake_exits_2_in_one_line(tmp_path: Path) -> None:
    """A bot with a plugin no route knows: exit status 2, one line naming it, no bot starts."""
    path = tmp_path / "bots.toml"
    path.write_text('[client]\nserver_url = "http://127.0.0.1:9"\n\n'
                    '[[bots]]\nname = "good"\nplugins = ["echo"]\n\n'
                    '[[bots]]\nname = "typo"\nplugins = ["dcie"]\n')
    result = subprocess.run([ROOMZ_CLI, "--headless", "--config", str(path)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"roomz-cli: {path}: [[bots]] 'typo' plugins: ") and "dcie" in line
