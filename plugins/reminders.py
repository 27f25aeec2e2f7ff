"""Reminders: ``!remind <duration> <text>``, kept in the plugin's store so restarts lose none.

``!reminders`` lists yours, ``!unremind <number|all>`` cancels. Each person may have
``max_pending`` reminders waiting, none longer than ``max_days``.
"""

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from msgspec import Meta

from roomz import ClientError
from roomz_bots import Message, PluginBot, UsageError, command, hookimpl

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^(-?[0-9]+)([smhd])$")
MOST_DIGITS = 12  # more than any allowed duration has; int() refuses over 4300 anyway


@dataclass
class Settings:
    """``[plugins.reminders]`` in the config."""

    max_pending: Annotated[int, Meta(ge=1)] = 25
    max_days: Annotated[int, Meta(ge=1)] = 365


def parse_duration(text: str, max_days: int = 365) -> int:
    """Seconds in a duration like 90s, 10m, 2h or 1d: at least 1 second, at most max_days."""
    match = DURATION.match(text.lower())
    if not match:
        raise UsageError(f"{shorten(text)!r} is not a duration like 10m, 2h or 1d")
    digits, unit = match.groups()
    # Whole numbers throughout: a 400-digit count never meets a float (OverflowError).
    seconds = int(digits) * UNITS[unit] if len(digits) <= MOST_DIGITS else -1
    if not 1 <= seconds <= max_days * UNITS["d"]:
        raise UsageError(f"{shorten(text)!r} is not between 1s and {max_days}d")
    return seconds


def pending(bot: PluginBot, email: str) -> list[tuple[str, Any]]:
    """``(key, reminder)`` for each reminder of ``email``, soonest first (older versions
    kept no email: theirs are the bot's user's)."""
    user = (bot.user or {}).get("email")
    mine = [item for item in bot.store.items(prefix="reminder:")
            if item[1].get("email", user) == email]
    return sorted(mine, key=lambda item: item[1]["due"])


def schedule(bot: PluginBot, key: str, due: float, text: str) -> None:
    """Fire the reminder at ``due``, then forget it; the job is named after its key."""
    async def fire() -> None:
        # Forgotten as it goes out: a bot stopped while the message is on its way (its
        # acknowledgement not back yet) must not send it again when it starts.
        reminder = bot.store.pop(key)
        try:
            await bot.send(f"⏰ Reminder: {text}")
        except ClientError:  # it did not go out: keep it for the next start
            bot.store[key] = reminder
            raise
    bot.at(due, fire, name=key)


@command(usage="remind <duration> <text>")
def remind(bot: PluginBot, message: Message, duration: str, *, text: str) -> str:
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
def reminders(bot: PluginBot, message: Message) -> str:
    """List your reminders, soonest first."""
    mine = pending(bot, message.email)
    if not mine:
        return "You have no reminders."
    now = bot.clock.time()
    return "Your reminders:\n" + "\n".join(
        f"{number}. in {describe(r['due'] - now)}: {shorten(r['text'], 60)}"
        for number, (_, r) in enumerate(mine, 1))


@command(usage="unremind <number|all>")
def unremind(bot: PluginBot, message: Message, which: str) -> str:
    """Cancel one of your reminders (numbered as !reminders lists them), or all."""
    mine = pending(bot, message.email)
    if which != "all":
        if not re.fullmatch(r"[0-9]{1,6}", which) or not 1 <= int(which) <= len(mine):
            raise UsageError(f"you have reminders 1 to {len(mine)}" if mine
                             else "you have no reminders")
        mine = [mine[int(which) - 1]]
    for key, _ in mine:
        bot.store.pop(key)
        bot.cancel(key)  # its job
    if which == "all":
        return f"Cancelled {len(mine)} reminder(s)."
    return f"Cancelled: {shorten(mine[0][1]['text'], 60)}"


def describe(seconds: float) -> str:
    """``1d 2h``, ``5m 10s``, ``now``: the two largest units of a time left."""
    left = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in reversed(UNITS.items()):
        if left >= size and len(parts) < 2:
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts) or "now"


def shorten(text: str, most: int = 20) -> str:
    """``text``, cut to ``most`` characters with an ellipsis."""
    return text if len(text) <= most else text[:most - 1] + "…"


@hookimpl
def startup(bot: PluginBot) -> None:
    """Reschedule the reminders stored before the last stop (overdue ones fire at once)."""
    for key, reminder in bot.store.items(prefix="reminder:"):
        schedule(bot, key, reminder["due"], reminder["text"])
