"""Uses the same key as counter, in a store of its own."""

from roomz_bots import PluginBot, command


@command
def tally(bot: PluginBot) -> str:
    """Count ten more."""
    bot.store["n"] = bot.store.get("n", 0) + 10
    return f"tally {bot.store['n']}"
