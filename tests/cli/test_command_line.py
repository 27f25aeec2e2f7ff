"""The ``roomz-cli`` command itself, run as a user would: options, a real pseudo-terminal.

``--headless`` as a real process is tested in ``tests/bots/test_headless.py``.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from roomz.cli.__main__ import build_parser

from .helpers import (
    CLOCK,
    CTRL_D,
    EMAIL,
    ROOMZ_CLI,
    cli_env,
    expect_answering,
    spawn_cli,
    wait_for_prompt,
    write_config,
)
from .screen import Screen

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
    for option in ("--server URL", "-s URL", "--config FILE", "--headless", "--embedded",
                   "--reconnect-max-delay SECONDS"):
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
    screen = Screen(spawn("--embedded", "--config", "config.example.toml", cwd=REPO))
    screen.wait_for(rf"Connected to http://127\.0\.0\.1:\d+ as {EMAIL}")
    screen.wait_for("Bot helper running")
    screen.wait_for(rf"connected · {EMAIL} · http://127\.0\.0\.1:\d+ · 1 bot\(s\) running")
    screen.type("!roll 2d6\r")
    screen.wait_for(rf"^{CLOCK} {EMAIL}: !roll 2d6$")
    screen.wait_for(rf"HelperBot \({EMAIL}\): 🎲 2d6: \d+ \+ \d+ = \d+")
    screen.type(CTRL_D)
    assert screen.ended() == 0
    history = Path(cli_env(tmp_path)["XDG_STATE_HOME"]) / "roomz" / "history"
    assert "\n+!roll 2d6\n" in history.read_text(encoding="utf-8")


def test_embedded_mode_shows_the_chat_page_and_its_sign_in_links(spawn: Spawn) -> None:
    """roomz-cli --embedded says where its server's chat page is; a sign-in link asked for
    from that page (no mail carries it) shows in the terminal."""
    screen = Screen(spawn("--embedded"))
    url = re.search(r"Chat page: (http://127\.0\.0\.1:\d+)/",
                    screen.wait_for(r"Chat page: http://127\.0\.0\.1:\d+/ \(open it"))
    assert url is not None
    screen.wait_for("Connected to")
    request = urllib.request.Request(f"{url[1]}/auth/request-magic-link", method="POST",
                                     data=b'{"email": "ada@example.com"}',
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    screen.wait_for(rf"Sign-in link for ada@example\.com: {re.escape(url[1])}/auth/verify\?token=")
    screen.type(CTRL_D)
    assert screen.ended() == 0


def test_the_typed_line_gives_way_to_the_message_it_became(spawn: Spawn, tmp_path: Path) -> None:
    """On the screen, a message sent shows once: the typed '> hello there' is replaced by
    'HH:MM:SS email: hello there'. A command's line gives way to its answer too."""
    screen = Screen(spawn("--embedded"))
    screen.wait_for("Connected to")
    screen.type("hello there\r")
    screen.wait_for(rf"^{CLOCK} {EMAIL}: hello there$")
    screen.watch(1)
    assert [line for line in screen.lines if "hello there" in line] == [
        screen.find("hello there")], screen.text
    assert screen.find("> hello") is None
    screen.type("/name Alice\r")
    screen.wait_for("You are now Alice")
    screen.watch(0.5)
    assert screen.find("/name Alice") is None, screen.text
    screen.type(CTRL_D)
    assert screen.ended() == 0


@pytest.mark.parametrize(("args", "expected"), [
    (["-s", "notaurl"], "roomz-cli: -s notaurl: a server URL starts with http:// or https://: "
                        "did you mean http://notaurl?"),
    (["-s", "localhost:8765"], "roomz-cli: -s localhost:8765: a server URL starts with http:// "
                               "or https://: did you mean http://localhost:8765?"),
    (["-s", "ftp://x"], "roomz-cli: -s ftp://x: ftp:// is not for Roomz servers: use http:// "
                        "or https://"),
    (["-s", "http://"], "roomz-cli: -s http://: it names no host, such as "
                        "http://localhost:8000"),
    (["-s", "http://localhost:99999"], "roomz-cli: -s http://localhost:99999: the port must be "
                                       "a number from 1 to 65535, such as "
                                       "http://localhost:8000"),
    (["-s", "http://localhost:port"], "roomz-cli: -s http://localhost:port: the port must be a "
                                      "number from 1 to 65535, such as http://localhost:8000"),
    (["--server", "http://local host"], "roomz-cli: -s http://local host: a server URL has no "
                                        "spaces, such as http://localhost:8000"),
    (["--port", "8000"], "roomz-cli: unrecognized arguments: --port 8000 (roomz-cli --help "
                         "shows the options)"),
    (["--reconnect-max-delay", "0"], "roomz-cli: argument --reconnect-max-delay: '0' is not a "
                                     "positive number of seconds (roomz-cli --help shows the "
                                     "options)"),
    (["--reconnect-max-delay", "soon"], "roomz-cli: argument --reconnect-max-delay: 'soon' is "
                                        "not a positive number of seconds (roomz-cli --help "
                                        "shows the options)"),
    (["-s"], "roomz-cli: argument --server/-s: expected one argument (roomz-cli --help shows "
             "the options)"),
], ids=["notaurl", "host-and-port", "ftp", "no-host", "port-too-big", "port-not-a-number",
        "space", "port-flag", "delay-zero", "delay-not-a-number", "server-without-url"])
def test_a_mistake_on_the_command_line_is_one_line_and_status_2(
        tmp_path: Path, args: list[str], expected: str) -> None:
    """A bad server URL, an option that does not exist, a bad number: exit status 2 and one
    line naming what was wrong and the fix; no traceback, no usage block."""
    done = subprocess.run([ROOMZ_CLI, *args], capture_output=True, text=True, timeout=30,
                          env=cli_env(tmp_path))
    assert (done.returncode, done.stderr, done.stdout) == (2, expected + "\n", "")


def test_a_bad_server_url_in_the_config_is_one_line_and_status_2(tmp_path: Path) -> None:
    """The config's server_url is checked like -s: one line naming the file, status 2."""
    config = write_config(tmp_path, "localhost:8765")
    done = subprocess.run([ROOMZ_CLI, "--config", str(config.path)], capture_output=True,
                          text=True, timeout=30, env=cli_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr == (f"roomz-cli: {config.path}: [client] server_url localhost:8765: a "
                           "server URL starts with http:// or https://: did you mean "
                           "http://localhost:8765?\n")


def test_reconnect_max_delay_is_the_flag_else_the_configs_else_a_minute(tmp_path: Path) -> None:
    """--reconnect-max-delay sets the cap of the terminal's backoff; without it, the config's
    [client] reconnect_max_delay where the config has one; else 60 s."""
    from roomz.cli.__main__ import _app

    parser = build_parser()
    config = write_config(tmp_path, "http://127.0.0.1:9")
    flagged = _app(parser.parse_args(["--reconnect-max-delay", "2.5"]), config.server_url, config)
    assert flagged.client.reconnect_delay_max == 2.5
    assert flagged.client.max_reconnect_attempts is None
    plain = _app(parser.parse_args([]), config.server_url, None)
    assert plain.client.reconnect_delay_max == 60.0
    if hasattr(config, "reconnect_max_delay"):  # the bot host's [client] key, where it exists
        configured = _app(parser.parse_args([]), config.server_url, config)
        assert configured.client.reconnect_delay_max == config.reconnect_max_delay
