"""Counts in its own persistent store."""

from roomz_bots import PluginBot, command


@command
def count(bot: PluginBot) -> str:
    """Count one more."""
    bot.store["n"] = bot.store.get("n", 0) + 1
    return f"count {bot.store['n']}"
