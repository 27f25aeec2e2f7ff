"""One plugin's failure, slowness or typo never costs the others: isolated, logged, loud at load."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import roomz_bots.bot
from roomz_bots import PluginError, load_plugin
from roomz_bots.testing import BotHarness

from .helpers import wait_until
from .sample_plugins import (
    JOURNAL,
    defaulted,
    failing,
    misspelled,
    obstinate,
    plain_settings,
    quitter,
    recorder_sync,
    sleepy,
    stubborn,
    unmarked,
    wrong_argument,
)


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The error lines the bot logged."""
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and r.name.startswith("roomz_bots")]


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> bool:
    """True when one error line holds every one of ``parts``."""
    return any(all(part in line for part in parts) for line in failures(caplog))


async def test_a_raising_hook_is_logged_and_the_others_still_run(
        caplog: pytest.LogCaptureFixture, watchers: Callable[..., Any]) -> None:
    """Plain and coroutine hooks that raise: logged with plugin and event; the rest carry on."""
    caplog.set_level(logging.ERROR)
    async with BotHarness([failing, recorder_sync, "dice"]) as chat:
        assert logged(caplog, "failing", "startup", "boom at startup")

        await chat.say("hello")
        await wait_until(lambda: bool(JOURNAL.of("recorder_sync", "on_message")),
                         what="recorder_sync to hear the message")
        assert logged(caplog, "failing", "on_message", "RuntimeError", "boom in on_message")

        token = (await chat.server.request_link(chat.email)).token
        other = await watchers(chat.server.url, token)
        await wait_until(lambda: bool(JOURNAL.of("recorder_sync", "on_user_joined")),
                         what="recorder_sync to hear the join")
        await wait_until(lambda: logged(caplog, "failing", "on_user_joined", "ValueError"),
                         what="the coroutine's failure in the log")
        await other.client.disconnect()

        await chat.say("!roll")
        assert (await chat.reply()).text.startswith("🎲 1d6: ")


async def test_sys_exit_in_a_hook_or_a_job_is_a_failure_not_the_end_of_the_process(
        caplog: pytest.LogCaptureFixture, watchers: Callable[..., Any]) -> None:
    """``sys.exit()`` in a plain hook, a coroutine hook or a scheduled job is logged like
    any failure; the process and the bot go on (it ended them, every bot in the process)."""
    caplog.set_level(logging.ERROR)
    async with BotHarness([quitter, "dice"]) as chat:
        await chat.say("quit in a plain hook")
        await wait_until(lambda: logged(caplog, "quitter", "on_message", "SystemExit",
                                        "plain hook", "(quitter.py, line 11)"),
                         what="the plain hook's exit in the log")

        token = (await chat.server.request_link(chat.email)).token
        other = await watchers(chat.server.url, token)
        await wait_until(lambda: logged(caplog, "quitter", "on_user_joined", "SystemExit"),
                         what="the coroutine hook's exit in the log")
        await other.client.disconnect()

        await chat.say("!later")
        assert (await chat.reply()).text == "Scheduled."
        await chat.advance(60)
        await wait_until(lambda: any("scheduled job" in line and "quitter" in line
                                     for line in failures(caplog)),
                         what="the job's exit in the log")

        await chat.say("!roll")
        assert (await chat.reply()).text.startswith("🎲 1d6: ")


def test_a_plugin_that_exits_as_it_is_imported_is_a_load_error(tmp_path: Any) -> None:
    """A plugin file calling ``sys.exit()`` at import is a PluginError naming it, not the end
    of the runner."""
    (tmp_path / "leaver.py").write_text("import sys\nsys.exit('no config here')\n")
    with pytest.raises(PluginError, match=r"leaver.*import failed: SystemExit: no config here"):
        load_plugin("leaver.py", base_dir=tmp_path)


async def test_a_raising_command_is_logged_and_the_bot_keeps_answering(
        caplog: pytest.LogCaptureFixture) -> None:
    """A command that raises is logged with its plugin, its name, and the plugin's line that
    raised (the terminal shows no traceback); the next command is answered."""
    caplog.set_level(logging.ERROR)
    async with BotHarness([failing, "dice"]) as chat:
        await chat.say("!explode")
        await wait_until(lambda: logged(caplog, "failing", "explode", "boom in a command",
                                        "(failing.py, line 26)"),
                         what="the command's failure in the log")
        assert (await chat.reply()).text.startswith("Sorry, !explode failed: KeyError")
        await chat.say("!roll")
        assert (await chat.reply()).text.startswith("🎲 1d6: ")


async def test_a_slow_hook_does_not_delay_other_plugins_replies() -> None:
    """A message hook sleeping seconds: another plugin's reply comes well before it finishes."""
    async with BotHarness([sleepy, "dice"]) as chat:
        said = time.monotonic()
        await chat.say("!roll")
        reply = await chat.reply(timeout=sleepy.SECONDS)
        answered = time.monotonic() - said

        assert reply.text.startswith("🎲 1d6: ")
        assert answered < sleepy.SECONDS / 3, f"the reply took {answered:.2f} s"
        assert JOURNAL.of("sleepy", "on_message started")
        assert not JOURNAL.of("sleepy", "on_message finished")


async def test_a_slow_command_does_not_delay_the_next_one() -> None:
    """While one command sleeps, a command of another plugin is answered at once."""
    async with BotHarness([sleepy, "echo"]) as chat:
        await chat.say("!nap")
        await wait_until(lambda: bool(JOURNAL.of("sleepy", "nap started")), what="the nap")
        said = time.monotonic()
        await chat.say("!echo still here")
        reply = await chat.reply(timeout=sleepy.SECONDS)

        assert reply.text == "still here"
        assert time.monotonic() - said < sleepy.SECONDS / 3
        assert not JOURNAL.of("sleepy", "nap finished")


async def stop_while_running(plugin: ModuleType, line: str) -> None:
    """Start a bot with ``plugin``, say ``line``, and stop the bot (bounded) once the
    plugin's journal says the command started."""
    chat = BotHarness([plugin])
    await chat.__aenter__()
    try:
        await chat.say(line)
        await wait_until(lambda: bool(JOURNAL.of(plugin.NAME)), what="the command")
        await asyncio.wait_for(chat.stop_bot(), 10)
    finally:
        await asyncio.wait_for(chat.__aexit__(None, None, None), 10)


async def test_a_command_that_lets_a_cancel_pass_does_not_hold_up_stopping() -> None:
    """A bot stops although a command's task let the first cancel pass: what is still
    running is cancelled again. (``bot.ask`` did so on Python 3.10 and 3.11 when the bot
    stopped as the question's acknowledgement came in: stopping took the question's
    timeout, 60 s by default.)"""
    await stop_while_running(stubborn, "!linger")
    assert [e.what for e in JOURNAL.of("stubborn")] == ["linger started",
                                                       "first cancel let pass"]


async def test_a_command_that_never_stops_is_named_when_stopping_gives_up(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that ignores every cancel: stopping gives up on it after its time, and the
    error line names the plugin and the command left running."""
    monkeypatch.setattr(roomz_bots.bot, "SHUTDOWN_HOOK_SECONDS", 2.0)
    caplog.set_level(logging.ERROR)
    await stop_while_running(obstinate, "!hang")
    assert logged(caplog, "still running after 2 s of cancels",
                  "plugin obstinate: command !hang")


async def test_a_hook_argument_with_a_default_gets_its_value() -> None:
    """``def on_message(bot, message=None)``: the hook gives ``message``, so it gets it."""
    async with BotHarness([defaulted]) as chat:
        await chat.say("hello")
        await wait_until(lambda: bool(JOURNAL.of("defaulted")), what="the hook")
        assert JOURNAL.of("defaulted")[0].args["message"].text == "hello"


def test_a_misspelled_hook_fails_at_load_time_naming_plugin_and_the_right_name() -> None:
    """``on_mesage``: a PluginError at load time naming the plugin, suggesting ``on_message``."""
    with pytest.raises(PluginError) as caught:
        load_plugin(misspelled)
    message = str(caught.value)
    assert "misspelled" in message
    assert "on_mesage" in message
    assert "did you mean 'on_message'" in message


def test_a_misspelled_hook_fails_when_loaded_by_name() -> None:
    """Loading the typo by its module path fails the same way, before any bot starts."""
    with pytest.raises(PluginError, match=r"tests\.bots\.sample_plugins\.misspelled.*on_message"):
        load_plugin("tests.bots.sample_plugins.misspelled")


async def test_a_harness_refuses_a_plugin_with_a_misspelled_hook() -> None:
    """The harness loads plugins first: the typo fails before anything connects."""
    with pytest.raises(PluginError, match="on_mesage"):
        BotHarness([misspelled, "dice"])


def test_a_hook_asking_for_an_unknown_argument_fails_at_load_time() -> None:
    """``on_message(bot, msg)``: one line (the terminal shows a log record's first line only)
    naming the plugin, the argument and the ones the hook gives."""
    with pytest.raises(PluginError) as caught:
        load_plugin(wrong_argument)
    assert str(caught.value) == ("plugin 'wrong_argument': on_message asks for 'msg', which "
                                 "the hook does not give (it gives bot, message)")


def test_a_hook_without_hookimpl_fails_at_load_time() -> None:
    """``def on_message(bot, message)`` without ``@hookimpl`` would never be called: the
    plugin fails to load, saying what is missing."""
    with pytest.raises(PluginError) as caught:
        load_plugin(unmarked)
    assert str(caught.value) == ("plugin 'unmarked': on_message is named after a hook but "
                                 "has no @hookimpl, so it would never be called")


def test_settings_that_are_no_dataclass_fail_at_load_time() -> None:
    """A plain ``class Settings`` could not be filled from the config, and the plugin would
    get None: it fails to load instead."""
    with pytest.raises(PluginError) as caught:
        load_plugin(plain_settings)
    assert str(caught.value) == ("plugin 'plain_settings': Settings must be a @dataclass "
                                 "(from dataclasses import dataclass), or be named otherwise")
