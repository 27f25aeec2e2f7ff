"""Reminders: ``!remind <duration> <text>``, kept in the plugin's store so restarts lose none.

``!reminders`` lists yours, ``!unremind <number|all>`` cancels. Each person may have
``max_pending`` reminders waiting, none longer than ``max_days``.
"""

import re
import uuid
from dataclasses import dataclass

from roomz_bots import UsageError, command, hookimpl

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^(-?[0-9]+)([smhd])$")
MOST_DIGITS = 12  # more than any allowed duration has; int() refuses over 4300 anyway
#: The scheduled job of each waiting reminder, by its store key, so !unremind can cancel it.
JOBS = {}


@dataclass
class Settings:
    """``[plugins.reminders]`` in the config."""

    max_pending: int = 25
    max_days: int = 365


def parse_duration(text: str, max_days: int = 365) -> int:
    """Seconds in a duration like 90s, 10m, 2h or 1d: at least 1 second, at most max_days."""
    match = DURATION.match(text.lower())
    if not match:
        raise UsageError(f"{shorten(text)!r} is not a duration like 10m, 2h or 1d")
    digits, unit = match.groups()
    longest = max_days * UNITS["d"]
    # Whole numbers throughout: a 400-digit count never meets a float (OverflowError).
    seconds = int(digits) * UNITS[unit] if len(digits) <= MOST_DIGITS else longest + 1
    if not 1 <= seconds <= longest:
        raise UsageError(f"{shorten(text)!r} is not between 1s and {max_days}d")
    return seconds


def pending(bot, email: str) -> list:
    """``(key, reminder)`` for each reminder ``email`` has waiting, soonest first."""
    mine = [(key, r) for key, r in bot.store.items(prefix="reminder:")
            if r.get("email", "") == email]
    return sorted(mine, key=lambda item: item[1]["due"])


def schedule(bot, key: str, due: float, text: str) -> None:
    """Fire the reminder at ``due``, then forget it."""
    async def fire():
        JOBS.pop(key, None)
        if key not in bot.store:  # cancelled, by a copy of this plugin from before a /reload
            return
        await bot.send(f"⏰ Reminder: {text}")
        bot.store.pop(key)
    JOBS[key] = bot.at(due, fire)


def cancel(bot, key: str) -> None:
    """Forget a reminder and its job."""
    bot.store.pop(key)
    job = JOBS.pop(key, None)
    if job is not None:
        job.cancel()


@command(usage="remind <duration> <text>")
def remind(bot, message, duration: str, *, text: str) -> str:
    """Remind you of something later: !remind 10m tea."""
    seconds = parse_duration(duration, bot.settings.max_days)
    most = bot.settings.max_pending
    if len(pending(bot, message.email)) >= most:
        raise UsageError(f"you have {most} reminders waiting, the most allowed; "
                         f"{bot.prefix}reminders lists them, {bot.prefix}unremind <number> "
                         f"cancels one")
    due = bot.clock.time() + seconds
    key = f"reminder:{uuid.uuid4()}"
    bot.store[key] = {"due": due, "text": text, "email": message.email}
    schedule(bot, key, due, text)
    return f"OK, in {duration}: {text}"


@command(usage="reminders")
def reminders(bot, message) -> str:
    """List your reminders, soonest first."""
    mine = pending(bot, message.email)
    if not mine:
        return "You have no reminders."
    now = bot.clock.time()
    return "Your reminders:\n" + "\n".join(
        f"{number}. in {describe(r['due'] - now)}: {shorten(r['text'], 60)}"
        for number, (_, r) in enumerate(mine, 1))


@command(usage="unremind <number|all>")
def unremind(bot, message, which: str) -> str:
    """Cancel one of your reminders (numbered as !reminders lists them), or all."""
    mine = pending(bot, message.email)
    if which == "all":
        for key, _ in mine:
            cancel(bot, key)
        return f"Cancelled {len(mine)} reminder(s)."
    if not re.fullmatch(r"[0-9]{1,6}", which) or not 1 <= int(which) <= len(mine):
        raise UsageError(f"you have reminders 1 to {len(mine)}" if mine
                         else "you have no reminders")
    key, reminder = mine[int(which) - 1]
    cancel(bot, key)
    return f"Cancelled: {shorten(reminder['text'], 60)}"


def describe(seconds: float) -> str:
    """``1d 2h``, ``5m 10s``, ``now``: the two largest units of a time left."""
    left, parts = max(0, round(seconds)), []
    for unit, size in reversed(UNITS.items()):
        if left >= size and len(parts) < 2:
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts) or "now"


def shorten(text: str, most: int = 20) -> str:
    """``text``, cut to ``most`` characters with an ellipsis."""
    return text if len(text) <= most else text[:most - 1] + "…"


@hookimpl
def startup(bot):
    """Reschedule the reminders stored before the last stop (overdue ones fire at once)."""
    for key, reminder in bot.store.items(prefix="reminder:"):
        schedule(bot, key, reminder["due"], reminder["text"])


@hookimpl
def shutdown(bot):
    """Let go of this bot's jobs: they stop with it, and startup makes them anew."""
    for key, _ in bot.store.items(prefix="reminder:"):
        JOBS.pop(key, None)
