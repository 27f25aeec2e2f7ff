"""Scheduled jobs (after, at, every) on the bot's clock; they outlive reconnects, not the bot."""

from __future__ import annotations

import asyncio
import logging

import pytest

from roomz_bots.clock import FakeClock
from roomz_bots.scheduler import Scheduler
from roomz_bots.testing import BotHarness

from .helpers import assert_no_reply, wait_until
from .sample_plugins import JOURNAL, gated, ticker


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every error logged so far."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def wait_disconnected(chat: BotHarness) -> None:
    """Wait until the bot has noticed that its connection is gone."""
    await wait_until(lambda: chat.bot is not None and not chat.bot.client.connected,
                     what="the bot to notice the drop")


async def test_every_runs_each_interval_of_the_clock() -> None:
    """A job scheduled with ``every(60)`` at startup runs at 60, 120, 180 seconds, not between."""
    async with BotHarness([ticker]) as chat:
        await chat.advance(60)
        assert (await chat.reply()).text == "tick 1"
        await chat.advance(60)
        assert (await chat.reply()).text == "tick 2"
        await chat.advance(59)
        await assert_no_reply(chat)
        await chat.advance(1)
        assert (await chat.reply()).text == "tick 3"


async def test_after_runs_once_after_the_delay() -> None:
    """``after(30)`` runs once, at 30 seconds."""
    async with BotHarness([ticker]) as chat:
        await chat.say("!later 30 tea time")
        assert (await chat.reply()).text == "in 30s"
        await chat.advance(29)
        await assert_no_reply(chat)
        await chat.advance(1)
        assert (await chat.reply()).text == "tea time"
        await chat.advance(25)
        await assert_no_reply(chat)


async def test_at_runs_at_the_given_moment() -> None:
    """``at(now + 45)`` runs at that moment, once."""
    async with BotHarness([ticker]) as chat:
        await chat.say("!at 45 it is time")
        assert (await chat.reply()).text == "at +45s"
        await chat.advance(44)
        await assert_no_reply(chat)
        await chat.advance(1)
        assert (await chat.reply()).text == "it is time"


async def test_a_plain_function_can_be_a_job() -> None:
    """Jobs may be plain functions as well as coroutines."""
    async with BotHarness([ticker]) as chat:
        await chat.say("!note 10")
        assert (await chat.reply()).text == "noted"
        await chat.advance(10)
        await wait_until(lambda: bool(JOURNAL.of("ticker", "note")), what="the note")


async def test_jobs_keep_running_across_a_reconnect(caplog: pytest.LogCaptureFixture) -> None:
    """A tick due while the server is away waits for the connection, then the ticks go on."""
    async with BotHarness([ticker]) as chat:
        await chat.advance(60)
        assert (await chat.reply()).text == "tick 1"

        await chat.drop_connection()
        await wait_disconnected(chat)
        await chat.advance(60)
        await asyncio.sleep(0.2)  # the tick is due; it must wait, not fail
        assert not JOURNAL.of("ticker", "tick")[1:]
        assert errors(caplog) == []

        await chat.restore_connection()
        await wait_until(lambda: len(JOURNAL.of("ticker", "tick")) == 2, what="tick 2 sent")
        assert JOURNAL.of("ticker", "tick")[1].args["ack"]["status"] == "ok"

        await chat.advance(60)
        seen = [(await chat.reply()).text]
        if seen == ["tick 2"]:  # the user was back in time to see the late tick too
            seen.append((await chat.reply()).text)
        assert seen[-1] == "tick 3"
    assert errors(caplog) == []


async def test_a_reply_attempted_while_reconnecting_waits_for_the_connection(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A command that answers while the server is away: the reply goes out once it is back."""
    monkeypatch.setattr(gated, "OPEN", asyncio.Event())
    async with BotHarness([gated]) as chat:
        await chat.say("!gated")
        await wait_until(lambda: bool(JOURNAL.of("gated", "waiting")), what="the command")

        await chat.drop_connection()
        await wait_disconnected(chat)
        gated.OPEN.set()
        await asyncio.sleep(0.2)  # the reply is attempted now; it must wait, not fail
        assert not JOURNAL.of("gated", "replied")
        assert errors(caplog) == []

        await chat.restore_connection()
        await wait_until(lambda: bool(JOURNAL.of("gated", "replied")), what="the reply")
        ack = JOURNAL.of("gated", "replied")[0].args["ack"]
        assert ack["status"] == "ok"
    assert errors(caplog) == []


async def test_jobs_stop_cleanly_when_the_bot_stops(caplog: pytest.LogCaptureFixture) -> None:
    """After a stop every job is cancelled; the restarted bot's own tick is the only one."""
    async with BotHarness([ticker]) as chat:
        await chat.say("!later 90 from the old bot")
        assert (await chat.reply()).text == "in 90s"
        old_jobs = list(ticker.JOBS)

        await chat.restart_bot()
        assert all(job.cancelled for job in old_jobs)

        await chat.advance(90)
        assert (await chat.reply()).text == "tick 1"
        await assert_no_reply(chat)
    assert all(job.cancelled for job in ticker.JOBS)
    assert errors(caplog) == []


async def test_a_bot_stops_cleanly_the_moment_its_server_goes_away() -> None:
    """SIGTERM as the server dies (both stopped together): ``stop()`` still ends without error."""
    async with BotHarness([ticker]) as chat:
        assert chat.bot is not None
        await chat.drop_connection()
        await asyncio.wait_for(chat.bot.stop(), 15)
        assert not chat.bot.client.connected
    assert all(job.cancelled for job in ticker.JOBS)


async def test_a_named_job_is_replaced_and_cancelled_by_its_name() -> None:
    """A second job of the same name replaces the first; ``cancel(name)`` takes it off the
    schedule at once; a one-off job that has run is no longer known by its name."""
    clock = FakeClock()
    scheduler = Scheduler(clock)
    scheduler.start()
    ran: list[str] = []
    try:
        first = scheduler.after(10, lambda: ran.append("first"), owner="p", name="tea")
        scheduler.after(20, lambda: ran.append("second"), owner="p", name="tea")
        scheduler.after(30, lambda: ran.append("other plugin"), owner="q", name="tea")
        assert first.cancelled and len(scheduler) == 2
        assert scheduler.cancel("q", "tea") and len(scheduler) == 1
        assert not scheduler.cancel("q", "tea")
        clock.advance(20)
        await wait_until(lambda: ran == ["second"], what="the second job")
        assert len(scheduler) == 0 and not scheduler.cancel("p", "tea")
    finally:
        await scheduler.stop()


async def test_cancelled_jobs_leave_the_schedule_at_once() -> None:
    """A thousand jobs due in a year, cancelled: none is left waiting for its time."""
    scheduler = Scheduler(FakeClock())
    jobs = [scheduler.after(365 * 86400, lambda: None) for _ in range(1000)]
    for job in jobs[::2]:
        job.cancel()
    assert len(scheduler) == 500
    for job in jobs[1::2]:
        job.cancel()
    assert len(scheduler) == 0
