"""Sends many messages at once, to meet the flood limit."""

import asyncio

from roomz_bots import PluginBot, command

from . import JOURNAL


@command
async def burst(bot: PluginBot, n: int) -> None:
    """Send n numbered messages at once."""
    acks = await asyncio.gather(*(bot.send(f"m{i}") for i in range(1, n + 1)))
    JOURNAL.record("burst", "acks", acks=acks)
