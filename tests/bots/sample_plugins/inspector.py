"""Keeps every message it hears; answers with reply() and send()."""

from roomz_bots import Message, PluginBot, command, hookimpl

from . import JOURNAL


@hookimpl
def on_message(bot: PluginBot, message: Message) -> None:
    JOURNAL.record("inspector", "on_message", message=message)


@command
async def both(bot: PluginBot, message: Message) -> None:
    """Answer once with reply() and once with send()."""
    await bot.reply(message, "via reply")
    await bot.send("via send")
