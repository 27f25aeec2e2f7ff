"""Someone floods a bot: reminders by the hundred, absurd durations, commands faster than it
may answer. Each is bounded, and answered once in words, never with a traceback."""

from __future__ import annotations

import logging

import pytest

from roomz_bots.testing import BotHarness

DAY = 86400
USAGE = "Usage: !remind <duration> <text>"


# -- reminders -------------------------------------------------------------------------------


async def test_reminders_beyond_the_per_person_cap_are_refused_with_the_way_out() -> None:
    """``!remind 1d`` once too often: a usage answer naming the cap, !reminders and
    !unremind; only the reminders within the cap are kept, and fire."""
    async with BotHarness(["reminders"], settings={"reminders": {"max_pending": 3}}) as chat:
        for i in range(1, 4):
            await chat.say(f"!remind 1d tea {i}")
            assert (await chat.reply()).text == f"OK, in 1d: tea {i}"
        for i in range(4, 7):
            await chat.say(f"!remind 1d tea {i}")
            refusal = (await chat.reply()).text
            assert refusal.startswith(USAGE), refusal
            assert "3 reminders" in refusal and "!reminders" in refusal, refusal
            assert "!unremind" in refusal, refusal

        await chat.advance(DAY)
        fired = sorted([(await chat.reply()).text for _ in range(3)])
        assert fired == [f"⏰ Reminder: tea {i}" for i in range(1, 4)]
        await chat.say("!reminders")  # nothing else fired before this answer
        assert (await chat.reply()).text == "You have no reminders."


async def test_a_cancelled_reminder_frees_its_place_and_never_fires() -> None:
    """At the cap, ``!unremind 1`` cancels the soonest: a new one is taken, the old is silent."""
    async with BotHarness(["reminders"], settings={"reminders": {"max_pending": 2}}) as chat:
        for line in ("!remind 1h first", "!remind 2h second"):
            await chat.say(line)
            assert (await chat.reply()).text.startswith("OK, in")
        await chat.say("!reminders")
        assert (await chat.reply()).text == \
            "Your reminders:\n1. in 1h: first\n2. in 2h: second"
        await chat.say("!unremind 1")
        assert (await chat.reply()).text == "Cancelled: first"
        await chat.say("!remind 3h third")
        assert (await chat.reply()).text == "OK, in 3h: third"

        await chat.advance(3 * 3600)
        fired = sorted([(await chat.reply()).text for _ in range(2)])
        assert fired == ["⏰ Reminder: second", "⏰ Reminder: third"]
        await chat.say("!reminders")  # "first" did not fire before this answer
        assert (await chat.reply()).text == "You have no reminders."


@pytest.mark.parametrize(("duration", "shown"), [
    ("9" * 400 + "s", "'" + "9" * 19 + "…'"),
    ("366d", "'366d'"),
    ("99999999999999999999d", "'9999999999999999999…'"),
    ("0s", "'0s'"),
    ("-5m", "'-5m'"),
])
async def test_an_absurd_duration_gets_a_usage_answer_naming_the_longest(
        duration: str, shown: str, caplog: pytest.LogCaptureFixture) -> None:
    """Too long (400 digits overflowed a float), zero or negative: the usage line naming the
    longest duration allowed, no reminder kept, nothing logged."""
    caplog.set_level(logging.WARNING)
    async with BotHarness(["reminders"]) as chat:
        await chat.say(f"!remind {duration} tea")
        assert (await chat.reply()).text == f"{USAGE} ({shown} is not between 1s and 365d)"
        await chat.say("!reminders")
        assert (await chat.reply()).text == "You have no reminders."
    assert [r.getMessage() for r in caplog.records if r.name.startswith("roomz_bots")] == []


async def test_the_longest_duration_is_a_setting() -> None:
    """``max_days = 2``: 2d is taken, 3d is refused naming 2d."""
    async with BotHarness(["reminders"], settings={"reminders": {"max_days": 2}}) as chat:
        await chat.say("!remind 2d tea")
        assert (await chat.reply()).text == "OK, in 2d: tea"
        await chat.say("!remind 49h tea")
        assert (await chat.reply()).text == f"{USAGE} ('49h' is not between 1s and 2d)"
