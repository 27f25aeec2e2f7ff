"""A command that raises tells the person who typed it, in one line; hooks that raise do not.

The runner's tests start ``roomz-server`` and ``roomz-cli --headless`` as real processes
(the setting comes from the config file); the others run bots in this process.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import roomz_bots.bot
from roomz.server.local import LocalServer
from roomz_bots.origins import Origins
from roomz_bots.testing import BotHarness
from tests.server.proc import RestartableServer

from .conftest import BotFactory
from .headless import Cli, bot_config, sign_in, user_on
from .helpers import SAMPLES, Watcher, assert_no_reply, wait_until
from .sample_plugins import JOURNAL, crashing, stranded

#: What the person sees when ``!crash`` raises (crashing.py divides by zero on line 20).
CRASHED = ("Sorry, !crash failed: ZeroDivisionError in crashing.py, line 20 (the bot's log "
           "has the details).")
#: The bot's log line for it, as it was before the bot answered failures.
LOGGED = (r"ERROR roomz_bots: bot roller: plugin crashing failed in command !crash: "
          r"ZeroDivisionError: division by zero \(crashing\.py, line 20\)$")


async def runner_with_crashing(tmp_path: Path, server: RestartableServer,
                               headless: Callable[..., Any], more: str = "") -> Cli:
    """``roomz-cli --headless`` running the bot ``roller`` (display name Roller) with
    crashing.py and dice, signed in to ``server``; ``more`` adds lines to its table."""
    session_file = tmp_path / "cache" / "session.json"
    await sign_in(server, session_file)
    shutil.copy(SAMPLES / "crashing.py", tmp_path / "crashing.py")
    config = bot_config(tmp_path, server.url, session_file, ("crashing.py", "dice"), more=more)
    cli: Cli = await headless(config)
    await cli.wait_for_line(r"bot roller is running")
    return cli


def said_by(user: Watcher, name: str) -> list[str]:
    """What the bot of display name ``name`` said, as ``user`` saw it."""
    return [m.text for _, m in user.seen if m.display_name == name]


async def roll_after(user: Watcher, name: str) -> None:
    """Ask for a roll and wait for the bot ``name`` to answer it: the bot answers in order,
    so whatever it had to say to the lines before has arrived."""
    rolls = sum(text.startswith("🎲") for text in said_by(user, name))
    await user.client.send("!roll")
    await wait_until(lambda: sum(text.startswith("🎲") for text in said_by(user, name))
                     > rolls, what=lambda: f"a roll from {name}: {user.texts}")


async def test_the_person_who_typed_a_failing_command_is_told_in_one_line(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """Another connection of the user says ``!crash``: the runner's bot answers it with one
    line naming the command, the error's type and the plugin's line, without the traceback
    or the error's message; its log has the line it had before, and the traceback."""
    cli = await runner_with_crashing(tmp_path, server_process, headless)
    user = await user_on(server_process, watchers)

    await user.client.send("!crash")
    reply = await user.wait_for(lambda m: m.display_name == "Roller", what="the bot's answer")
    assert reply.text == CRASHED
    assert "Traceback" not in reply.text and "division by zero" not in reply.text
    await cli.wait_for_line(LOGGED)
    assert cli.matching(r"^Traceback") != []  # the log keeps it

    await roll_after(user, "Roller")  # the hook raised on "!crash" too: no reply for that
    assert said_by(user, "Roller")[:-1] == [CRASHED]


async def test_a_command_that_exits_is_a_failure_and_the_runner_goes_on(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """A command parses its words with argparse, which calls ``sys.exit`` on words it cannot
    parse: the person is told as for any failure, and the runner, with every bot it runs,
    goes on (SystemExit escaping the command's task would end the whole process)."""
    cli = await runner_with_crashing(tmp_path, server_process, headless)
    user = await user_on(server_process, watchers)

    await user.client.send("!parse --count many")
    reply = await user.wait_for(lambda m: m.display_name == "Roller", what="the bot's answer")
    assert reply.text == ("Sorry, !parse failed: SystemExit in crashing.py, line 28 (the "
                          "bot's log has the details).")
    await cli.wait_for_line(r"plugin crashing failed in command !parse: SystemExit: 2 "
                            r"\(crashing\.py, line 28\)$")
    await roll_after(user, "Roller")


async def test_reply_errors_false_leaves_the_chat_quiet_and_the_log_as_it_was(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """``reply_errors = false`` in the bot's table: a known key (no warning); nothing in the
    chat; the same log line."""
    cli = await runner_with_crashing(tmp_path, server_process, headless,
                                     more="reply_errors = false\n")
    user = await user_on(server_process, watchers)

    await user.client.send("!crash")
    await cli.wait_for_line(LOGGED)
    await roll_after(user, "Roller")
    said = said_by(user, "Roller")
    assert len(said) == 1 and said[0].startswith("🎲 1d6: "), said
    assert cli.matching("unknown key") == [], cli.stderr


async def test_a_raising_message_hook_gets_no_reply() -> None:
    """Nobody asked a hook: ``!crash``, on which both the hook and the command raise, gets
    one reply, the command's; a line on which only the hook raises gets none."""
    async with BotHarness([crashing]) as chat:
        await chat.say("!crash")
        assert (await chat.reply()).text == CRASHED
        await chat.say("no crash here")
        await assert_no_reply(chat)


async def test_bots_of_two_processes_do_not_answer_each_others_error_replies(
        server: LocalServer, make_bot: BotFactory, watchers: Callable[..., Any]) -> None:
    """Two bots with the failing ``!crash`` (which takes any words), each with its own
    registry of who sent what, as the runner's and the terminal's are: each hears the
    other's error reply as the user's line, and neither takes it for a command."""
    email = "tester@example.com"
    for name in ("Left", "Right"):
        await make_bot(name.lower(), server.url, (await server.request_link(email)).token,
                       [crashing, "dice"], display_name=name, origins=Origins())
    user: Watcher = await watchers(server.url, (await server.request_link(email)).token)

    await user.client.send("!crash")
    await wait_until(lambda: bool(said_by(user, "Left") and said_by(user, "Right")),
                     what=lambda: f"both bots' error replies: {user.texts}")
    await roll_after(user, "Left")
    await roll_after(user, "Right")
    assert [text for text in user.texts if "failed" in text] == [CRASHED, CRASHED]


async def test_the_harness_reads_the_error_reply_and_the_log_has_the_exception(
        caplog: pytest.LogCaptureFixture) -> None:
    """A plugin author's test: ``reply()`` returns the error reply like any other, and the
    exception itself is in the log record; the bot answers the next command."""
    caplog.set_level(logging.ERROR, "roomz_bots")
    async with BotHarness([crashing, "dice"]) as chat:
        await chat.say("!crash")
        assert (await chat.reply()).text == CRASHED
        (error,) = [r.exc_info[1] for r in caplog.records
                    if r.exc_info and "command !crash" in r.getMessage()]
        assert isinstance(error, ZeroDivisionError)
        await chat.say("!roll")
        assert (await chat.reply()).text.startswith("🎲 1d6: ")


async def test_the_harness_can_turn_the_reply_off() -> None:
    """``BotHarness(reply_errors=False)``, as the config's ``reply_errors = false``."""
    async with BotHarness([crashing], reply_errors=False) as chat:
        await chat.say("!crash")
        await assert_no_reply(chat)


async def test_an_error_reply_that_cannot_go_out_is_logged_not_kept(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command fails while the server is away: its reply waits for the connection as any
    reply does (here 0.5 s), then one warning says whom it could not tell; once the server
    is back, the reply is not sent late."""
    monkeypatch.setattr(roomz_bots.bot, "SEND_WAIT_SECONDS", 0.5)
    caplog.set_level(logging.WARNING, "roomz_bots")
    async with BotHarness([stranded, "dice"]) as chat:
        await chat.say("!strand")
        await wait_until(lambda: bool(JOURNAL.of("stranded")), what="the command to start")
        await chat.drop_connection()
        await wait_until(lambda: any(
            "could not tell tester@example.com that !strand failed" in r.getMessage()
            for r in caplog.records), what="the warning")
        assert any("plugin stranded failed in command !strand: LookupError" in r.getMessage()
                   for r in caplog.records)

        await chat.restore_connection()
        await chat.say("!roll")
        assert (await chat.reply()).text.startswith("🎲 1d6: ")
