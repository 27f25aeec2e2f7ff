"""The ``roomz-cli`` command itself, run as a user would: options, a real pseudo-terminal.

``--headless`` as a real process is tested in ``tests/bots/test_headless.py``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from roomz.cli.__main__ import build_parser

from .helpers import (
    ANSI,
    EMAIL,
    ROOMZ_CLI,
    cli_env,
    expect_answering,
    spawn_cli,
    wait_for_prompt,
    write_config,
)

REPO = Path(__file__).resolve().parents[2]

Spawn = Callable[..., pexpect.spawn]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """``spawn(*args)``: ``roomz-cli`` in a 30x120 pseudo-terminal; killed if a test leaves it."""
    children: list[pexpect.spawn] = []

    def start(*args: str, cwd: Path = tmp_path) -> pexpect.spawn:
        child = spawn_cli(tmp_path, *args, cwd=cwd)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def quits_with_ctrl_d(child: pexpect.spawn) -> int | None:
    """Press Ctrl-D at the prompt and return the exit status.

    The prompt must be drawn again after the last line printed above it: while
    prompt_toolkit prints, the terminal is in cooked mode, where Ctrl-D is the tty's own
    end-of-file and never reaches the program (as for a person typing at that instant).
    """
    child.sendcontrol("d")
    expect_answering(child, pexpect.EOF)
    child.close()
    status: int | None = child.exitstatus
    return status


def test_help_explains_every_option_with_an_example(tmp_path: Path) -> None:
    """--help: every option with its explanation, the default server, and examples of each."""
    done = subprocess.run([ROOMZ_CLI, "--help"], capture_output=True, text=True,
                          timeout=30, env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("usage: roomz-cli")
    for option in ("--server URL", "-s URL", "--config FILE", "--headless", "--embedded"):
        assert option in out
    for action in build_parser()._actions:
        assert action.help and action.help.split("(")[0].strip()[:30] in " ".join(out.split())
    assert "http://localhost:8000" in out
    assert "server_url" in out  # the config's server is the default when there is a config
    examples = out.split("examples:", 1)[1]
    example_lines = [line.strip() for line in examples.splitlines()
                     if line.strip().startswith("roomz-cli")]
    for option in ("-s", "--config", "--headless", "--embedded"):
        assert any(f" {option} " in f"{line} " for line in example_lines), (option, examples)


def test_headless_without_a_config_is_a_one_line_error(tmp_path: Path) -> None:
    """--headless alone: exit status 2 and one line saying --config is needed."""
    done = subprocess.run([ROOMZ_CLI, "--headless"], capture_output=True, text=True,
                          timeout=30, env=cli_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == "roomz-cli: --headless needs --config FILE"


def test_a_config_that_does_not_exist_is_a_one_line_error(tmp_path: Path) -> None:
    """--config of a missing file: exit status 2 and one line naming the file."""
    done = subprocess.run([ROOMZ_CLI, "--config", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True, timeout=30, env=cli_env(tmp_path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "nope.toml" in done.stderr


@pytest.mark.parametrize(("args", "expected"), [
    ([], "http://localhost:8000"),
    (["--config", "{config}"], "http://127.0.0.1:9"),
    (["--config", "{config}", "-s", "http://127.0.0.2:9"], "http://127.0.0.2:9"),
    (["--server", "http://127.0.0.3:9"], "http://127.0.0.3:9"),
], ids=["default", "config", "short-flag-over-config", "long-flag"])
def test_server_is_the_flag_else_the_configs_else_localhost(
        spawn: Spawn, tmp_path: Path, args: list[str], expected: str) -> None:
    """The toolbar shows which server: --server/-s, else the config's server_url, else :8000."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    child = spawn(*[a.format(config=config.path) for a in args])
    child.expect("Not signed in: /login")
    wait_for_prompt(child)
    child.expect(rf"not signed in · {re.escape(expected)} · 0 bot\(s\) running")
    assert quits_with_ctrl_d(child) == 0


def test_embedded_mode_rolls_dice_with_the_example_config(spawn: Spawn, tmp_path: Path) -> None:
    """roomz-cli --embedded --config config.example.toml: signed in, !roll 2d6 is answered;
    Ctrl-D exits 0 and what was typed is in the history file in the user's state dir."""
    child = spawn("--embedded", "--config", "config.example.toml", cwd=REPO)
    child.expect(rf"Connected to http://127\.0\.0\.1:\d+ as {EMAIL}")
    child.expect("Bot helper running")
    wait_for_prompt(child)
    child.expect(rf"connected · {EMAIL} · http://127\.0\.0\.1:\d+ · 1 bot\(s\) running")
    child.send("!roll 2d6\r")
    child.expect(rf"{ANSI}{EMAIL}{ANSI}: !roll 2d6")
    child.expect(rf"HelperBot \({EMAIL}\){ANSI}: 🎲 2d6: \d+ \+ \d+ = \d+")
    wait_for_prompt(child)  # drawn again after the answer was printed above it
    assert quits_with_ctrl_d(child) == 0
    history = Path(cli_env(tmp_path)["XDG_STATE_HOME"]) / "roomz" / "history"
    assert "\n+!roll 2d6\n" in history.read_text(encoding="utf-8")
