"""Reminders: ``!remind <duration> <text>``, kept in the plugin's store so restarts lose none."""

import re
import uuid

from roomz_bots import UsageError, command, hookimpl

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_duration(text: str) -> int:
    """Seconds in a duration like 90s, 10m, 2h or 1d."""
    match = DURATION.match(text.lower())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{text!r} is not a duration like 10m, 2h or 1d")
    return int(match.group(1)) * UNITS[match.group(2)]


def schedule(bot, key: str, due: float, text: str) -> None:
    """Fire the reminder at ``due``, then forget it."""
    async def fire():
        await bot.send(f"⏰ Reminder: {text}")
        bot.store.pop(key)
    bot.at(due, fire)


@command(usage="remind <duration> <text>")
def remind(bot, duration: str, *, text: str) -> str:
    """Remind you of something later: !remind 10m tea."""
    due = bot.clock.time() + parse_duration(duration)
    key = f"reminder:{uuid.uuid4()}"
    bot.store[key] = {"due": due, "text": text}
    schedule(bot, key, due, text)
    return f"OK, in {duration}: {text}"


@hookimpl
def startup(bot):
    """Reschedule the reminders stored before the last stop (overdue ones fire at once)."""
    for key, reminder in bot.store.items(prefix="reminder:"):
        schedule(bot, key, reminder["due"], reminder["text"])
