"""Implements every hook with coroutines taking every argument."""

import asyncio
from collections.abc import Callable
from typing import Any

from roomz_bots import Command, Message, PluginBot, hookimpl

from . import JOURNAL

NAME = "recorder_async"


@hookimpl
async def startup(bot: PluginBot) -> None:
    await asyncio.sleep(0)
    JOURNAL.record(NAME, "startup", bot=bot)


@hookimpl
async def shutdown(bot: PluginBot) -> None:
    await asyncio.sleep(0)
    JOURNAL.record(NAME, "shutdown", bot=bot)


@hookimpl
async def register_commands(register: Callable[[Command], None]) -> None:
    async def async_dyn() -> str:
        """Registered at run time by a coroutine."""
        return "async dyn ok"

    JOURNAL.record(NAME, "register_commands")
    register(Command(name="async_dyn", func=async_dyn))


@hookimpl
async def on_authenticated(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_authenticated", bot=bot, event=event)


@hookimpl
async def on_message(bot: PluginBot, message: Message) -> None:
    JOURNAL.record(NAME, "on_message", bot=bot, message=message)


@hookimpl
async def on_user_joined(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_user_joined", bot=bot, event=event)


@hookimpl
async def on_user_left(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_user_left", bot=bot, event=event)


@hookimpl
async def on_display_name_changed(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_display_name_changed", bot=bot, event=event)


@hookimpl
async def on_disconnect(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_disconnect", bot=bot, event=event)


@hookimpl
async def on_error(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_error", bot=bot, event=event)
