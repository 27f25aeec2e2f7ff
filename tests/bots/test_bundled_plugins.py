"""The plugins that ship with Roomz, used the way a person in the chat uses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from roomz_bots.store import Store
from roomz_bots.testing import BotHarness

from .helpers import assert_no_reply

ROLL = re.compile(r"^🎲 (?P<spec>\S+): (?P<shown>.+)$")

# -- echo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["hello", "I <3 you", "<b>bold</b> & 'quoted' \"too\"",
                                  "&lt;3 stays &lt;3", "spaced   out"])
async def test_echo_says_the_text_back_as_typed(text: str) -> None:
    """``!echo`` repeats the text exactly: ``<3`` comes back as ``<3``, not ``&lt;3``."""
    async with BotHarness(["echo"]) as chat:
        await chat.say(f"!echo {text}")
        reply = await chat.reply()
        assert reply.text == text


async def test_echo_without_text_answers_with_usage() -> None:
    """``!echo`` alone: the usage line."""
    async with BotHarness(["echo"]) as chat:
        await chat.say("!echo")
        assert (await chat.reply()).text == "Usage: !echo <text...> (missing text)"


# -- dice ------------------------------------------------------------------------------------


def rolled(text: str) -> tuple[str, list[int], int]:
    """The spec, the dice and the total of a roll reply."""
    match = ROLL.match(text)
    assert match, f"not a roll: {text!r}"
    shown = match["shown"]
    if "=" in shown:
        dice, total = shown.split(" = ")
        return match["spec"], [int(d) for d in dice.split(" + ")], int(total)
    return match["spec"], [int(shown)], int(shown)


async def test_roll_without_arguments_rolls_one_six_sided_die() -> None:
    """``!roll``: one die, 1 to 6."""
    async with BotHarness(["dice"]) as chat:
        await chat.say("!roll")
        spec, dice, total = rolled((await chat.reply()).text)
    assert spec == "1d6" and len(dice) == 1 and 1 <= total <= 6


async def test_roll_2d6_shows_each_die_and_the_sum() -> None:
    """``!roll 2d6``: two dice of 1 to 6 and their sum."""
    async with BotHarness(["dice"]) as chat:
        for _ in range(5):
            await chat.say("!roll 2d6")
            spec, dice, total = rolled((await chat.reply()).text)
            assert spec == "2d6" and len(dice) == 2
            assert all(1 <= d <= 6 for d in dice) and sum(dice) == total


async def test_r_is_an_alias_of_roll() -> None:
    """``!r 3d4``: the alias works like ``!roll``."""
    async with BotHarness(["dice"]) as chat:
        await chat.say("!r 3d4")
        spec, dice, total = rolled((await chat.reply()).text)
    assert spec == "3d4" and len(dice) == 3 and all(1 <= d <= 4 for d in dice)


@pytest.mark.parametrize(("line", "reason"), [
    ("!roll banana", "'banana' is not like 2d6"),
    ("!roll 3d6", "1-2 dice of 2-10 sides"),
    ("!roll 1d11", "1-2 dice of 2-10 sides"),
    ("!roll 0d6", "1-2 dice of 2-10 sides"),
    ("!roll 1d1", "1-2 dice of 2-10 sides"),
    ("!roll 1d6 extra", "unexpected 'extra'"),
    ("!roll 1d" + "9" * 9, "1-2 dice of 2-10 sides"),
    ("!roll 1d" + "9" * 900, "'1d9999999999...9999999999999' is not like 2d6"),
    ("!roll " + "9" * 30 + "d6", "'999999999999...99999999999d6' is not like 2d6"),
])
async def test_bad_dice_are_answered_with_usage_within_the_configured_limits(
        line: str, reason: str) -> None:
    """Limits come from the settings (max_dice, max_sides); a bad spec gets the usage line."""
    settings = {"dice": {"max_dice": 2, "max_sides": 10}}
    async with BotHarness(["dice"], settings=settings) as chat:
        await chat.say(line)
        assert (await chat.reply()).text == f"Usage: !roll [NdM] ({reason})"
        await chat.say("!roll 2d10")
        assert rolled((await chat.reply()).text)[0] == "2d10"


# -- greeter ---------------------------------------------------------------------------------


async def greeting_for_a_newcomer(settings: dict[str, Any] | None,
                                  watchers: Callable[..., Any]) -> str:
    """What the greeter says when another connection of the user joins."""
    async with BotHarness(["greeter"], settings=settings) as chat:
        await assert_no_reply(chat)
        token = (await chat.server.request_link(chat.email)).token
        newcomer = await watchers(chat.server.url, token)
        text = (await chat.reply()).text
        await newcomer.client.disconnect()
        return text


async def test_greeter_welcomes_a_connection_that_joins(watchers: Callable[..., Any]) -> None:
    """Another connection joins: the greeter welcomes it by email (it has no name yet)."""
    assert await greeting_for_a_newcomer(None, watchers) == "Welcome, tester@example.com!"


async def test_greeter_uses_the_greeting_from_settings(watchers: Callable[..., Any]) -> None:
    """``[plugins.greeter] greeting = ...`` with ``{name}`` replaces the default."""
    settings = {"greeter": {"greeting": "Hi {name}, the tea is ready"}}
    assert await greeting_for_a_newcomer(settings, watchers) == \
        "Hi tester@example.com, the tea is ready"


# -- reminders -------------------------------------------------------------------------------


async def test_a_reminder_fires_when_its_time_comes() -> None:
    """``!remind 10m tea``: confirmed at once, silent for 599 seconds, then the reminder."""
    async with BotHarness(["reminders"]) as chat:
        await chat.say("!remind 10m tea")
        assert (await chat.reply()).text == "OK, in 10m: tea"
        await chat.advance(599)
        await assert_no_reply(chat)
        await chat.advance(1)
        assert (await chat.reply()).text == "⏰ Reminder: tea"
        await chat.advance(3600)
        await assert_no_reply(chat)


@pytest.mark.parametrize(("line", "reason"), [
    ("!remind soon tea", "'soon' is not a duration like 10m, 2h or 1d"),
    ("!remind 0m tea", "'0m' is not between 1s and 365d"),
    ("!remind 10m", "missing text"),
    ("!remind", "missing duration"),
])
async def test_a_bad_reminder_is_answered_with_usage(line: str, reason: str) -> None:
    """A duration that is not like 10m, or no text: the usage line and why."""
    async with BotHarness(["reminders"]) as chat:
        await chat.say(line)
        assert (await chat.reply()).text == f"Usage: !remind <duration> <text> ({reason})"


async def test_a_reminder_set_before_a_restart_fires_after_it(tmp_path: Path) -> None:
    """The reminder is kept in the store: the restarted bot fires it on time, once."""
    async with BotHarness(["reminders"], data_dir=tmp_path) as chat:
        await chat.say("!remind 1h stretch")
        assert (await chat.reply()).text == "OK, in 1h: stretch"
        await chat.advance(1800)

        await chat.restart_bot()
        await chat.advance(1799)
        await assert_no_reply(chat)
        await chat.advance(1)
        assert (await chat.reply()).text == "⏰ Reminder: stretch"

        await chat.restart_bot()
        await chat.advance(7200)
        await assert_no_reply(chat)


async def test_a_reminder_whose_time_passed_while_stopped_fires_at_once(tmp_path: Path) -> None:
    """Stopped past its time: the reminder fires as soon as the bot is back."""
    async with BotHarness(["reminders"], data_dir=tmp_path) as chat:
        assert chat.bot is not None
        await chat.say("!remind 10m tea")
        assert (await chat.reply()).text == "OK, in 10m: tea"

        await chat.bot.stop()
        chat.clock.advance(20 * 60)
        await chat.start_bot()

        assert (await chat.reply()).text == "⏰ Reminder: tea"


async def test_reminders_are_listed_soonest_first_and_cancelled_one_or_all() -> None:
    """``!reminders`` numbers yours by time left; ``!unremind N`` or ``all`` cancels;
    a number that is not on the list gets the usage line."""
    async with BotHarness(["reminders"]) as chat:
        for line in ("!remind 26h call mum", "!remind 90s tea", "!remind 10m stretch"):
            await chat.say(line)
            assert (await chat.reply()).text.startswith("OK, in ")
        await chat.say("!reminders")
        assert (await chat.reply()).text == \
            "Your reminders:\n1. in 1m 30s: tea\n2. in 10m: stretch\n3. in 1d 2h: call mum"
        await chat.say("!unremind 4")
        assert (await chat.reply()).text == \
            "Usage: !unremind <number|all> (you have reminders 1 to 3)"
        await chat.say("!unremind 2")
        assert (await chat.reply()).text == "Cancelled: stretch"
        await chat.say("!unremind all")
        assert (await chat.reply()).text == "Cancelled 2 reminder(s)."
        await chat.say("!unremind 1")
        assert (await chat.reply()).text == "Usage: !unremind <number|all> (you have no reminders)"
        await chat.advance(2 * 86400)
        await chat.say("!reminders")  # none fired before this answer
        assert (await chat.reply()).text == "You have no reminders."


async def test_reminders_an_older_version_kept_are_the_bots_users(tmp_path: Path) -> None:
    """Older versions stored reminders without the email of who asked. They belong to the
    bot's user: listed, counted against the cap, and cancelled like new ones."""
    settings = {"reminders": {"max_pending": 2}}
    harness = BotHarness(["reminders"], data_dir=tmp_path, settings=settings)
    old = Store(tmp_path / "testbot" / "reminders.sqlite3")
    old["reminder:from-before"] = {"due": harness.clock.time() + 3600, "text": "old tea"}
    old.close()
    async with harness as chat:
        await chat.say("!remind 2h new tea")
        assert (await chat.reply()).text == "OK, in 2h: new tea"
        await chat.say("!remind 3h one too many")
        assert "2 reminders" in (await chat.reply()).text
        await chat.say("!reminders")
        assert (await chat.reply()).text == "Your reminders:\n1. in 1h: old tea\n2. in 2h: new tea"
        await chat.say("!unremind 1")
        assert (await chat.reply()).text == "Cancelled: old tea"
        await chat.advance(3600)
        await assert_no_reply(chat)
