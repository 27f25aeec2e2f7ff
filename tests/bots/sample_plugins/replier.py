"""A command that replies itself and hands back what ``reply`` returned (its
acknowledgement): a common way to end a command, ``return await bot.reply(...)``."""

from __future__ import annotations

from typing import Any

from roomz_bots import Message, PluginBot, command


@command
async def ack(bot: PluginBot, message: Message) -> dict[str, Any]:
    """Reply "done", returning the reply's acknowledgement."""
    return await bot.reply(message, "done")
