"""Scheduled jobs: a tick every minute from startup, and one-off jobs on command."""

from roomz_bots import PluginBot, command, hookimpl
from roomz_bots.scheduler import Job

from . import JOURNAL

NAME = "ticker"
JOBS: list[Job] = []


@hookimpl
def startup(bot: PluginBot) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        ack = await bot.send(f"tick {ticks}")
        JOURNAL.record(NAME, "tick", n=ticks, ack=ack)

    JOBS.append(bot.every(60, tick))


@command
def later(bot: PluginBot, seconds: int, *, text: str) -> str:
    """Say the text after some seconds."""
    async def say() -> None:
        await bot.send(text)

    JOBS.append(bot.after(seconds, say))
    return f"in {seconds}s"


@command
def at(bot: PluginBot, seconds: int, *, text: str) -> str:
    """Say the text at the moment some seconds from now."""
    async def say() -> None:
        await bot.send(text)

    JOBS.append(bot.at(bot.clock.time() + seconds, say))
    return f"at +{seconds}s"


@command
def note(bot: PluginBot, seconds: int) -> str:
    """Write a note in the journal after some seconds (a plain function job)."""
    JOBS.append(bot.after(seconds, lambda: JOURNAL.record(NAME, "note", seconds=seconds)))
    return "noted"
