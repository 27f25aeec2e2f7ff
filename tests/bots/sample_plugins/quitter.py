"""Calls ``sys.exit()`` where a plugin's code runs: a plain hook, a coroutine hook, a job."""

import sys

from roomz_bots import Message, PluginBot, command, hookimpl


@hookimpl
def on_message(bot: PluginBot, message: Message) -> None:
    if message.text == "quit in a plain hook":
        sys.exit("plain hook")


@hookimpl
async def on_user_joined(bot: PluginBot, event: dict) -> None:  # type: ignore[type-arg]
    sys.exit(3)


@command
def later(bot: PluginBot) -> str:
    """Schedules a job that calls sys.exit()."""
    bot.after(60, lambda: sys.exit(4))
    return "Scheduled."
