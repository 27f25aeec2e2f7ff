"""A command whose reply waits until a file named ``open`` appears in the runner's folder:
a test outside the runner's process chooses when the reply goes out."""

import asyncio
import logging
from pathlib import Path

from roomz_bots import Message, PluginBot, command

log = logging.getLogger("held")
GATE = Path("open")  # the headless runner runs in its config's folder


@command
async def held(bot: PluginBot, message: Message, *, tag: str) -> None:
    """Reply "held TAG" once the gate opens."""
    log.info("holding the reply to %s", tag)
    while not GATE.exists():
        await asyncio.sleep(0.05)
    log.info("replying to %s", tag)
    await bot.reply(message, f"held {tag}")
