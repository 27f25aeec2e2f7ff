"""Helpers for terminal tests: a ``ChatApp`` typed into through a pipe, and what it shows.

``Terminal`` runs the real ``ChatApp`` (real prompt_toolkit ``PromptSession``, real
client, real server on loopback) with a pipe as its keyboard and a list as its screen:
``type()`` sends keystrokes, ``wait_for()`` waits (bounded) for a line to be shown.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pexpect
from prompt_toolkit.application import create_app_session
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from roomz import AsyncClient
from roomz.cli.app import ChatApp
from roomz.server.local import LocalServer
from roomz_bots.config import Config, load_config
from tests.waiting import wait_until

TIMEOUT = 10.0
CTRL_C = "\x03"
CTRL_D = "\x04"
ALT_ENTER = "\x1b\r"  # what a terminal sends for Alt+Enter (and for Esc, then Enter)
RIGHT = "\x1b[C"
CLOCK = r"\d\d:\d\d:\d\d"
ROOMZ_CLI = str(Path(sys.executable).parent / "roomz-cli")
EMAIL = "alice@example.com"
ANSI = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"  # colour and cursor codes between words on the screen
CPR_REQUEST = "\x1b[6n"  # "where is the cursor?", asked by every prompt it draws


def text_of(line: StyleAndTextTuples) -> str:
    """The plain text of a rendered line."""
    return "".join(fragment[1] for fragment in line)


def style_of(line: FormattedText, part: str) -> str:
    """The style of the first fragment of ``line`` that contains ``part``."""
    for fragment in line:
        if part in fragment[1]:
            return fragment[0]
    raise AssertionError(f"{part!r} is not in {list(line)!r}")


class Terminal:
    """A running ``ChatApp``: type into it, read the lines it showed, quit it."""

    def __init__(self, app: ChatApp, keyboard: PipeInput, lines: list[FormattedText]) -> None:
        self.app = app
        self.keyboard = keyboard
        self.lines = lines
        self.task: asyncio.Task[int] = asyncio.create_task(app.run())

    @property
    def texts(self) -> list[str]:
        """Every line shown so far, as plain text."""
        return [text_of(line) for line in self.lines]

    def mark(self) -> int:
        """How many lines have been shown: pass it as ``start`` to wait for later ones."""
        return len(self.lines)

    def type(self, keys: str) -> None:
        """Press ``keys`` (``\\r`` is Enter)."""
        self.keyboard.send_text(keys)

    def find(self, pattern: str, start: int = 0) -> FormattedText | None:
        """The first line from ``lines[start:]`` whose text matches the regex ``pattern``."""
        return next((line for line in self.lines[start:]
                     if re.search(pattern, text_of(line))), None)

    async def wait_for(self, pattern: str, *, start: int = 0,
                       timeout: float = TIMEOUT) -> FormattedText:
        """The first line from ``lines[start:]`` matching ``pattern``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while (line := self.find(pattern, start)) is None:
            if self.task.done():
                raise AssertionError(f"the terminal ended ({self.task!r}) before showing "
                                     f"{pattern!r}; it showed {self.texts[start:]!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"the terminal showed {self.texts[start:]!r}")
            await asyncio.sleep(0.01)
        return line

    async def command(self, keys: str, pattern: str, timeout: float = TIMEOUT) -> FormattedText:
        """Type ``keys`` then Enter, and wait for a line matching ``pattern`` shown after it."""
        start = self.mark()
        self.type(keys + "\r")
        return await self.wait_for(pattern, start=start, timeout=timeout)

    async def until(self, predicate: Callable[[], bool], what: str,
                    timeout: float = TIMEOUT) -> None:
        """Wait (bounded) until ``predicate()`` holds."""
        await wait_until(predicate, timeout,
                         lambda: f"{what}; the terminal showed {self.texts!r}")

    async def exit_status(self, keys: str | None = None, timeout: float = TIMEOUT) -> int:
        """Press ``keys`` (if any) and return the status ``run()`` ends with."""
        if keys:
            self.type(keys)
        return await asyncio.wait_for(asyncio.shield(self.task), timeout)

    @property
    def typed(self) -> str:
        """The text in the prompt's input line right now."""
        return self.app.session.default_buffer.text

    async def prompt_ready(self) -> None:
        """Wait (bounded) until the prompt is up and has read its history."""
        await self.until(lambda: self.app.session.app.is_running, "the prompt")
        history = self.app.history
        stored = len(list(history.load_history_strings()))
        await self.until(lambda: len(history.get_strings()) >= stored, "the history to load")

    def toolbar(self) -> str:
        """The bottom toolbar's text right now."""
        return text_of(self.app.toolbar())

    async def sign_in(self, server: LocalServer, email: str) -> None:
        """``/login email``, then ``/token`` with the link the server sent."""
        before = len(server.links)
        await self.command(f"/login {email}", "Sign-in link sent")
        link = await server.next_link(email, after=before)
        await self.command(f"/token {link.token}", "Connected to")


@asynccontextmanager
async def open_terminal(server_url: str, tmp_path: Path, *, config: Config | None = None,
                        history: History | None = None,
                        session_file: Path | None = None,
                        setup: Callable[[ChatApp], Any] | None = None) -> AsyncIterator[Terminal]:
    """A ``ChatApp`` on ``server_url`` reading a pipe; quit with Ctrl-D (bounded) at the end.

    ``setup(app)`` runs after the app is built and before it starts.
    """
    lines: list[FormattedText] = []
    with create_pipe_input() as keyboard, create_app_session(input=keyboard,
                                                             output=DummyOutput()):
        app = ChatApp(server_url, config=config, history=history,
                      session_file=session_file or tmp_path / "session.json",
                      echo=lines.append, data_dir=tmp_path / "data")
        if setup is not None:
            setup(app)
        terminal = Terminal(app, keyboard, lines)
        try:
            yield terminal
        finally:
            if not terminal.task.done():
                try:
                    keyboard.send_text(CTRL_D)
                    await asyncio.wait_for(asyncio.shield(terminal.task), TIMEOUT)
                except Exception:
                    terminal.task.cancel()
                    await asyncio.gather(terminal.task, return_exceptions=True)
                    await asyncio.wait_for(app.close(), TIMEOUT)


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a ``roomz-cli`` that must not touch the real user's files."""
    env = dict(os.environ)
    home = tmp_path / "home"
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"),
               XDG_CONFIG_HOME=str(home / "config"), TERM="xterm", ROOMZ_EMAIL=EMAIL)
    return env


def spawn_cli(tmp_path: Path, *args: str, cwd: Path | None = None,
              columns: int = 120, rows: int = 30) -> pexpect.spawn:
    """``roomz-cli ARGS`` in a pseudo-terminal of 30 ``rows`` and 120 ``columns``, its files
    under ``tmp_path``."""
    return pexpect.spawn(ROOMZ_CLI, list(args), cwd=str(cwd or tmp_path), env=cli_env(tmp_path),
                         dimensions=(rows, columns), encoding="utf-8", timeout=TIMEOUT)


def wait_for_prompt(child: pexpect.spawn) -> None:
    """Wait for the prompt; answer its cursor position request as a terminal does."""
    child.expect(re.escape(CPR_REQUEST))
    child.send("\x1b[5;1R")  # the bottom toolbar is only drawn once the position is known
    child.expect(">")


def expect_answering(child: pexpect.spawn, *patterns: Any, timeout: float = TIMEOUT) -> int:
    """Wait for the first of ``patterns`` and return its index, answering every cursor
    position request on the way as a terminal does (unanswered, each costs a wait)."""
    deadline = time.monotonic() + timeout
    while (found := child.expect([re.escape(CPR_REQUEST), *patterns],
                                 timeout=max(deadline - time.monotonic(), 0))) == 0:
        child.send("\x1b[5;1R")
    return found - 1


async def connect_other(server: LocalServer, email: str, **options: Any) -> AsyncClient:
    """Another connection of ``email`` (a second device), signed in with a fresh link."""
    link = await server.request_link(email)
    client = AsyncClient(server.url, **options)
    await asyncio.wait_for(client.connect(link.token), TIMEOUT)
    return client


def write_config(tmp_path: Path, server_url: str, *, plugins: str = '["dice", "echo"]',
                 extra: str = "") -> Config:
    """A bots config in ``tmp_path``: one bot, ``helper`` (HelperBot), on ``server_url``."""
    path = tmp_path / "bots.toml"
    path.write_text(f"""\
[client]
server_url = "{server_url}"
session_cache_file = "{tmp_path / 'session.json'}"

[[bots]]
name = "helper"
display_name = "HelperBot"
plugins = {plugins}
flood_burst = 20
{extra}""", encoding="utf-8")
    return load_config(path)


def at_prompt(tmp_path: Path, server_url: str,
              children: list[pexpect.spawn]) -> pexpect.spawn:
    """``roomz-cli -s server_url`` in a pseudo-terminal, not signed in, at its prompt; what it
    shows is kept in ``child.logfile_read``."""
    child = spawn_cli(tmp_path, "-s", server_url)
    children.append(child)
    child.logfile_read = io.StringIO()
    child.expect("Not signed in: /login")
    wait_for_prompt(child)
    return child
