"""Rich messages in the terminal: a bot's Markdown, code with a subject (collapsed, then
expanded), a question answered by typing its number or Tab-completing an answer, its
timeout, and /who. The real ChatApp on a real server, hosting a real bot."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from roomz.server.local import LocalServer
from roomz_bots.config import Config
from tests.bots.sample_plugins import reporter

from .helpers import (
    CLOCK,
    CTRL_D,
    EMAIL,
    Terminal,
    open_terminal,
    spawn_cli,
    style_of,
    text_of,
    write_config,
)
from .screen import Screen
from .screenshot import save_png

REPORTER = Path(reporter.__file__)
BOT = rf"HelperBot \({EMAIL}\)"
CTRL_O = "\x0f"
#: Where the terminal's picture goes (ignored by git); docs/ keeps a copy.
SHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "terminal"


def config_with_reporter(tmp_path: Path, url: str, *, timeout: float = 30.0,
                         extra: str = "") -> Config:
    """The helper bot with the reporter plugin, its questions open ``timeout`` seconds."""
    return write_config(tmp_path, url, plugins=f'["{REPORTER}", "poll"]', extra=(
        f"{extra}\n[plugins.reporter]\ndeploy_timeout = {timeout}\n"))


@contextlib.asynccontextmanager
async def terminal_with_bot(server: LocalServer, tmp_path: Path, *, timeout: float = 30.0,
                            extra: str = "") -> AsyncIterator[Terminal]:
    """The terminal signed in on ``server``, its helper bot (reporter, poll) running."""
    config = config_with_reporter(tmp_path, server.url, timeout=timeout, extra=extra)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        yield term


async def test_a_bots_markdown_reply_is_drawn_and_hostile_text_is_inert(
        server: LocalServer, tmp_path: Path) -> None:
    """Heading, emphasis, a list, a table with box lines, highlighted code; the HTML and
    the escape sequence inside show as text and placeholders, never obeyed."""
    async with terminal_with_bot(server, tmp_path) as term:
        start = term.mark()
        term.type("!report\r")
        line = await term.wait_for("# Deploy report", start=start)
    text = text_of(line)
    assert text.splitlines()[:5] == [
        f"{text.splitlines()[0]}",
        "    # Deploy report", "    ",
        "    Everything went fine, see the log and deploy.txt.", "    "]
    assert re.fullmatch(rf"{CLOCK} {BOT}:", text.splitlines()[0])
    assert "    • web servers\n    • databases" in text
    assert ("    host       │ status   │  ms\n    ───────────┼──────────┼────\n"
            "    web1       │ ok       │  12\n    db-primary │ degraded │ 340") in text
    assert "    │ def rollback(host):" in text
    assert style_of(line, "fine") == "bold"
    assert "class:pygments.keyword" in style_of(line, "def")
    assert "\x1b" not in text and "\x07" not in text
    assert "␛[31mRED␛[0m ␇" in text  # the escape sequence, shown; in the code block too
    assert text.count("<script>alert(2)</script>") == 2
    assert "[click](javascript:alert(3))" in text  # no link to a script: shown as typed


async def test_a_question_is_answered_by_typing_its_number(server: LocalServer,
                                                           tmp_path: Path) -> None:
    """The question shows numbered answers; typing 1 answers it (every connection sees
    "↳ yes"), and the bot goes on with that answer."""
    async with terminal_with_bot(server, tmp_path) as term:
        start = term.mark()
        term.type("!deploy\r")
        question = text_of(await term.wait_for(r"\? Deploy to production\?", start=start))
        assert question.splitlines()[1:] == [
            "    ? Deploy to production?", "      1. yes", "      2. no",
            "      To answer, type its number, or Tab for the answers, then Enter (open 30 s, "
            "then “no”)."]
        start = term.mark()
        term.type("1\r")
        answer = await term.wait_for("↳ yes", start=start)
        assert text_of(answer).endswith("↳ yes (to “Deploy to production?”)")
        await term.wait_for(rf"{BOT}: Deploying now\.", start=start)
        start = term.mark()
        await term.command("1", rf"{EMAIL}: 1$")  # closed: a number is a message again


async def test_tab_completes_an_answer_and_the_label_answers(server: LocalServer,
                                                             tmp_path: Path) -> None:
    """With a question open, Tab offers its answers; the completed label answers."""
    async with terminal_with_bot(server, tmp_path) as term:
        start = term.mark()
        term.type("!deploy\r")
        await term.wait_for(r"\? Deploy to production\?", start=start)
        completer = term.app.session.completer
        assert completer is not None
        offered = [(c.text, c.display_meta_text) for c in completer.get_completions(
            Document("n"), CompleteEvent(completion_requested=True))]
        assert offered == [("no", "answer 2 to “Deploy to production?”")]
        start = term.mark()
        term.type("no\r")
        await term.wait_for("↳ no", start=start)
        await term.wait_for(rf"{BOT}: Not deploying \(no\)\.", start=start)


async def test_an_unanswered_question_times_out_to_its_default(server: LocalServer,
                                                               tmp_path: Path) -> None:
    """Nobody answers within the timeout: the server's line, and the bot takes the default."""
    async with terminal_with_bot(server, tmp_path, timeout=1) as term:
        start = term.mark()
        term.type("!deploy\r")
        line = await term.wait_for("No answer to", start=start, timeout=15)
        assert text_of(line).endswith("⏱ No answer to “Deploy to production?” within 1 s: no.")
        await term.wait_for(rf"{BOT}: Not deploying \(no\)\.", start=start, timeout=15)
        await term.command("2", rf"{EMAIL}: 2$")  # closed: not an answer any more


async def test_a_message_with_a_subject_is_collapsed_until_expanded(server: LocalServer,
                                                                    tmp_path: Path) -> None:
    """Code with a subject shows as one line; /expand 1 and Ctrl-O show it whole."""
    async with terminal_with_bot(server, tmp_path) as term:
        start = term.mark()
        term.type("!snippet\r")
        line = await term.wait_for("A snippet", start=start)
        assert text_of(line).endswith(
            ": ▸ A snippet  (2 lines: /expand 1 or Ctrl-O shows it)")
        assert "def f" not in text_of(line)
        expanded = await term.command("/expand 1", "def f")
        assert text_of(expanded).splitlines()[1:] == [
            "    ▾ A snippet", "    │ def f(x):", "    │     return x + 1"]
        start = term.mark()
        term.type(CTRL_O)
        await term.wait_for("▾ A snippet", start=start)
        await term.command("/expand 7", "No collapsed message 7")


async def test_who_lists_the_terminal_and_its_bots(server: LocalServer, tmp_path: Path) -> None:
    """/who: this terminal and both hosted bots, by kind and name."""
    second = '[[bots]]\nname = "second"\nplugins = ["echo"]\n'
    async with terminal_with_bot(server, tmp_path, extra=second) as term:
        await term.wait_for("Bot second running")
        line = text_of(await term.command("/who", "3 connections"))
    shown = line.split(" ", 1)[1].splitlines()
    assert shown[0] == "3 connections:"
    assert sorted(s.split(",")[0].strip() for s in shown[1:]) == [
        "bot helper", "bot second", "terminal"]
    assert any(s.endswith("(this terminal)") and s.strip().startswith("terminal")
               for s in shown[1:])
    assert any("bot helper, HelperBot, since" in s for s in shown[1:])


def test_on_the_screen_markdown_and_a_question_answered_by_its_number(tmp_path: Path) -> None:
    """roomz-cli --embedded in a real pseudo-terminal, read by a terminal emulator: the
    bot's Markdown table and code are drawn, and typing 1 answers its question (the screen
    is saved as .artifacts/terminal/rich-messages.png); a report's escape sequence is shown,
    not obeyed (the screen has no red RED)."""
    config = config_with_reporter(tmp_path, "http://127.0.0.1:9")
    child = spawn_cli(tmp_path, "--embedded", "--config", str(config.path),
                      columns=100, rows=36)
    screen = Screen(child, rows=36, columns=100)
    try:
        screen.wait_for("Bot helper running")
        screen.type("!status\r")
        screen.wait_for("db-primary │ degraded │ 340")
        screen.type("!deploy\r")
        screen.wait_for("To answer, type its number")
        screen.watch(0.5)
        save_png(screen.screen, SHOTS / "rich-messages.png")
        screen.type("1\r")
        screen.wait_for("↳ yes \\(to “Deploy to production\\?”\\)")
        screen.wait_for(rf"{BOT}: Deploying now\.")
        screen.type("!report\r")
        line = screen.wait_for("␛\\[31mRED␛\\[0m ␇ \\[click\\]")
        row = screen.lines.index(line)
        red = [c for c in screen.screen.buffer[row].values() if c.data in "RED"]
        assert red and all(c.fg not in ("red", "brightred") for c in red)
        screen.type(CTRL_D)
        assert screen.ended() == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
