"""Quotes: keep the room's best lines and bring one back now and then.

``!grab`` keeps the last line someone said, ``!quote [number]`` shows one (a random one
without a number), ``!forget <number>`` deletes one; every ``interval_minutes`` the bot
posts a random quote.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from roomz_bots import Message, PluginBot, UsageError, command, hookimpl


@dataclass
class Settings:
    """``[plugins.quotes]`` in the config."""

    interval_minutes: float = 60.0  # how often to post a random quote; 0: never
    max_quotes: int = 100


@hookimpl
def on_message(bot: PluginBot, message: Message) -> None:
    """Remember the last line someone said (not a command), so !grab can keep it."""
    if not message.text.startswith(bot.prefix):
        bot.store["last"] = {"text": message.text, "by": message.label}


@command
def grab(bot: PluginBot) -> str:
    """Keep the last line someone said as a quote."""
    last = bot.store.get("last")
    if last is None:
        return "Nothing to grab yet."
    quotes = bot.store.get("quotes", [])
    if len(quotes) >= bot.settings.max_quotes:
        return f"I keep {bot.settings.max_quotes} quotes at most; {bot.prefix}forget one first."
    quotes.append(last)
    bot.store["quotes"] = quotes  # a value read from the store is a copy: write it back
    return f"Quote #{len(quotes)} saved."


@command(aliases=["q"])
def quote(bot: PluginBot, number: int = 0) -> str:
    """Show a quote: the one numbered NUMBER, or a random one."""
    quotes = bot.store.get("quotes", [])
    if not quotes:
        return f"No quotes yet: {bot.prefix}grab keeps the last line someone said."
    if number == 0:
        number = random.randint(1, len(quotes))
    if not 1 <= number <= len(quotes):
        raise UsageError(f"there are quotes 1 to {len(quotes)}")
    return show(quotes, number)


@command
def forget(bot: PluginBot, number: int) -> str:
    """Delete the quote numbered NUMBER."""
    quotes = bot.store.get("quotes", [])
    if not 1 <= number <= len(quotes):
        raise UsageError(f"there is no quote #{number}")
    del quotes[number - 1]
    bot.store["quotes"] = quotes
    return f"Quote #{number} forgotten."


def show(quotes: list[dict[str, str]], number: int) -> str:
    """``#2: “text” (who)``."""
    chosen = quotes[number - 1]
    return f"#{number}: “{chosen['text']}” ({chosen['by']})"


@hookimpl
def startup(bot: PluginBot) -> None:
    """Post a random quote every interval_minutes."""
    if bot.settings.interval_minutes > 0:
        bot.every(bot.settings.interval_minutes * 60, lambda: post_random(bot))


async def post_random(bot: PluginBot) -> None:
    """The scheduled job: one random quote, if there are any."""
    quotes = bot.store.get("quotes", [])
    if quotes:
        await bot.send("Quote time! " + show(quotes, random.randint(1, len(quotes))))
