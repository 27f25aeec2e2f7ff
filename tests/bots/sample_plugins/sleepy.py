"""Slow on purpose: a message hook and a command that take seconds."""

import asyncio

from roomz_bots import Message, PluginBot, command, hookimpl

from . import JOURNAL

NAME = "sleepy"
SECONDS = 3.0


@hookimpl
async def on_message(bot: PluginBot, message: Message) -> None:
    JOURNAL.record(NAME, "on_message started", text=message.text)
    await asyncio.sleep(SECONDS)
    JOURNAL.record(NAME, "on_message finished", text=message.text)


@command
async def nap() -> str:
    """Take a nap before answering."""
    JOURNAL.record(NAME, "nap started")
    await asyncio.sleep(SECONDS)
    JOURNAL.record(NAME, "nap finished")
    return "rested"
