"""Raises in a plain hook, a coroutine hook, at startup and in a command."""

from typing import Any

from roomz_bots import Message, PluginBot, command, hookimpl


@hookimpl
def startup(bot: PluginBot) -> None:
    raise RuntimeError("boom at startup")


@hookimpl
def on_message(bot: PluginBot, message: Message) -> None:
    raise RuntimeError("boom in on_message")


@hookimpl
async def on_user_joined(bot: PluginBot, event: dict[str, Any]) -> None:
    raise ValueError("boom in on_user_joined")


@command
def explode() -> str:
    """Always fails."""
    raise KeyError("boom in a command")
