"""Someone floods a bot: reminders by the hundred, absurd durations, commands faster than it
may answer. Each is bounded, and answered once in words, never with a traceback."""

from __future__ import annotations

import logging

import pytest

from roomz_bots.clock import FakeClock
from roomz_bots.flood import TokenBucket
from roomz_bots.testing import BotHarness
from tests.bots.sample_plugins import JOURNAL, burst, lines
from tests.waiting import wait_until

DAY = 86400
USAGE = "Usage: !remind <duration> <text>"


def slow_down(text: str) -> bool:
    """True for the bot's one "slow down" answer."""
    return text.startswith("Slow down")


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


async def test_reminding_and_cancelling_over_and_over_leaves_nothing_scheduled() -> None:
    """With a reminder due tomorrow, ``!remind 300d`` then ``!unremind 2``, fifty times: the
    bot's schedule does not grow (a cancelled reminder's job leaves it at once, not once
    every job due before it has run)."""
    async with BotHarness(["reminders"]) as chat:
        assert chat.bot is not None
        await chat.say("!remind 1d stretch")
        assert (await chat.reply()).text == "OK, in 1d: stretch"
        scheduled = len(chat.bot.scheduler)
        for _ in range(50):
            await chat.say("!remind 300d tea")
            assert (await chat.reply()).text == "OK, in 300d: tea"
            await chat.say("!unremind 2")
            assert (await chat.reply()).text == "Cancelled: tea"
        assert len(chat.bot.scheduler) == scheduled


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


# -- replies faster than the flood limit -----------------------------------------------------


async def test_a_burst_of_replies_beyond_the_line_is_cut_short_with_one_slow_down() -> None:
    """``!burst 200`` (the line of 20 by default): m1 goes at once, then the slow down,
    ahead of the 20 replies that wait; the other 179 are dropped instead of queueing for
    minutes."""
    JOURNAL.clear()
    pace = FakeClock()
    flood = TokenBucket(burst=1, per_second=2.0, clock=pace)
    async with BotHarness([burst], flood=flood) as chat:
        await chat.say("!burst 200")
        assert (await chat.reply()).text == "m1"
        await wait_until(lambda: flood.dropped == 179, what="179 dropped replies")
        pace.advance(1)
        assert slow_down((await chat.reply()).text)
        assert flood.waiting == 20 and flood.dropped == 179
    JOURNAL.clear()


async def test_a_long_answer_is_never_cut_part_way_by_a_flood() -> None:
    """``!lines 25`` goes out in three messages. Commands that arrive between its parts
    fill the line of replies (4) and overflow it: the answer's later parts still go out,
    whole, in turn; only replies to new commands are dropped."""
    pace = FakeClock()
    flood = TokenBucket(burst=1, per_second=1.0, max_waiting=4, clock=pace)
    async with BotHarness([lines, "echo"], flood=flood) as chat:
        await chat.say("!lines 25")
        assert (await chat.reply()).text.startswith("line 001")
        await wait_until(lambda: flood.waiting == 1, what="the second part waiting")
        for word in ("a", "b", "c", "d", "e"):
            await chat.say(f"!echo {word}")
        await wait_until(lambda: flood.dropped == 2, what="d and e dropped")

        said = []
        for _ in range(6):
            pace.advance(1)
            said.append((await chat.reply()).text)
        # A later command: the line is empty again, and a late d or e would come before it.
        await chat.say("!echo f")
        pace.advance(1)
        said.append((await chat.reply()).text)
    assert said[6] == "f", said
    assert slow_down(said[0]), said
    assert said[1].startswith("line 011") and said[2:5] == ["a", "b", "c"], said
    assert said[5].startswith("line 021") and said[5].endswith("line 025 " + "x" * 90), said


async def test_a_flood_of_commands_gets_one_slow_down_and_the_excess_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    """Burst 1, 3 replies may wait; 10 ``!echo`` at once (the pace's clock stands still):
    1 answered, 3 queued, 6 dropped. The sender hears one "slow down" first, then the 3,
    then nothing more until its next command; one line logs the 6 dropped."""
    caplog.set_level(logging.WARNING, logger="roomz_bots")
    pace = FakeClock()
    flood = TokenBucket(burst=1, per_second=1.0, max_waiting=3, clock=pace)
    async with BotHarness(["echo"], flood=flood) as chat:
        for i in range(1, 11):
            await chat.say(f"!echo {i}")
        await wait_until(lambda: flood.dropped == 6, what="6 dropped replies")
        assert (await chat.reply()).text == "1"

        pace.advance(1)  # the slow down goes ahead of the replies waiting
        assert slow_down((await chat.reply()).text)
        for expected in ("2", "3", "4"):
            pace.advance(1)
            assert (await chat.reply()).text == expected
        await wait_until(lambda: any("dropped" in r.getMessage() for r in caplog.records),
                         what="the log line")

        # The line has drained: answered again, and neither 5-10 nor a second slow down
        # came before the answer.
        await chat.say("!echo 11")
        pace.advance(1)
        assert (await chat.reply()).text == "11"

    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1 and "6" in lines[0] and "testbot" in lines[0], lines
    assert sum(slow_down(m.text) for m in chat.messages) == 1


async def test_a_scheduled_post_goes_ahead_of_a_flood_and_is_never_dropped() -> None:
    """A reminder falls due while the line of replies is full and overflowing: it goes out
    right after the slow down, before the replies that wait, and is not dropped."""
    pace = FakeClock()
    flood = TokenBucket(burst=1, per_second=1.0, max_waiting=2, clock=pace)
    async with BotHarness(["echo", "reminders"], flood=flood) as chat:
        await chat.say("!remind 1m tea")
        assert (await chat.reply()).text == "OK, in 1m: tea"
        for word in ("a", "b", "c", "d"):
            await chat.say(f"!echo {word}")
        await wait_until(lambda: flood.dropped == 2, what="2 dropped replies")
        await chat.advance(60)  # the reminder falls due and waits its turn
        await wait_until(lambda: flood.waiting == 4, what="slow down, reminder, a, b waiting")

        said = []
        for _ in range(4):
            pace.advance(1)
            said.append((await chat.reply()).text)
        assert slow_down(said[0]) and said[1:] == ["⏰ Reminder: tea", "a", "b"], said


async def test_a_dropped_reply_is_told_to_the_plugin_as_a_429() -> None:
    """What ``bot.send`` returns for a dropped reply says so: ``code`` 429 and an error."""
    JOURNAL.clear()
    pace = FakeClock()
    flood = TokenBucket(burst=1, per_second=1.0, max_waiting=2, clock=pace)
    async with BotHarness([burst], flood=flood) as chat:
        await chat.say("!burst 5")  # m1 goes, m2 and m3 wait, m4 and m5 are dropped
        assert (await chat.reply()).text == "m1"
        for expected in ("Slow down", "m2", "m3"):
            pace.advance(1)
            assert (await chat.reply()).text.startswith(expected)
        await wait_until(lambda: bool(JOURNAL.of("burst")), what="!burst to finish")
        (acks,) = [e.args["acks"] for e in JOURNAL.of("burst")]
    JOURNAL.clear()
    assert [a.get("status") for a in acks[:3]] == ["ok"] * 3
    assert [a.get("code") for a in acks[3:]] == [429, 429]
    assert all("waiting" in a["error"] for a in acks[3:])
