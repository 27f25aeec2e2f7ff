"""A command that answers only when the test opens its gate (to reply at a chosen moment)."""

import asyncio

from roomz_bots import Message, PluginBot, command

from . import JOURNAL

#: The test puts a fresh event here and sets it when the reply should go out.
OPEN = asyncio.Event()


@command
async def gated(bot: PluginBot, message: Message) -> None:
    """Reply once the gate opens."""
    JOURNAL.record("gated", "waiting")
    await OPEN.wait()
    ack = await bot.reply(message, "through the gate")
    JOURNAL.record("gated", "replied", ack=ack)
