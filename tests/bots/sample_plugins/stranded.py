"""A command that fails once the bot's connection is gone: its error reply cannot go out."""

import asyncio
from typing import Any

from roomz_bots import PluginBot, command, hookimpl

from . import JOURNAL

NAME = "stranded"
#: Set when the bot's connection drops, by bot name (made at startup, in the bot's loop).
DISCONNECTED: dict[str, asyncio.Event] = {}


@hookimpl
def startup(bot: PluginBot) -> None:
    DISCONNECTED[bot.name] = asyncio.Event()


@hookimpl
def on_disconnect(bot: PluginBot, event: dict[str, Any]) -> None:
    DISCONNECTED[bot.name].set()


@command
async def strand(bot: PluginBot) -> str:
    """Wait until the connection drops, then fail."""
    JOURNAL.record(NAME, "strand started")
    await DISCONNECTED[bot.name].wait()
    raise LookupError("failed while the bot was away")
