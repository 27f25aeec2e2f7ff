"""Greeter: says hello when another connection of the user joins."""

from dataclasses import dataclass
from typing import Any

from roomz_bots import PluginBot, display_name_of, hookimpl


@dataclass
class Settings:
    """``[plugins.greeter]`` in the config; {name} is the newcomer's display name or email."""

    greeting: str = "Welcome, {name}!"


@hookimpl
async def on_user_joined(bot: PluginBot, event: dict[str, Any]) -> None:
    """Greet the connection that just joined."""
    user = event.get("user") or {}
    await bot.send(bot.settings.greeting.format(name=display_name_of(user) or user.get("email")))
