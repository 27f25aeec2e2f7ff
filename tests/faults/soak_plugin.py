"""The soak's bot plugin: ``!ask TAG`` is answered ``answer TAG``, and every message the
bot hears is written down, one JSON line each, so that the soak can count them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from roomz_bots import Message, PluginBot, command, hookimpl


@dataclass
class Settings:
    """``[plugins.soak_plugin]``: where the heard messages go."""

    heard: str = "heard.jsonl"


@hookimpl
def startup(bot: PluginBot) -> None:
    """A line for each start: what is heard again after a restart can be told apart."""
    with open(bot.settings.heard, "a", encoding="utf-8") as out:
        out.write(json.dumps({"started": True}) + "\n")


@hookimpl
def on_message(bot: PluginBot, message: Message) -> None:
    """Write the message down at once: the runner may be killed right after."""
    line = json.dumps({"id": message.id, "text": message.text,
                       "replayed": bool(message.raw.get("replayed"))})
    with open(bot.settings.heard, "a", encoding="utf-8") as out:
        out.write(line + "\n")


@command
def ask(*, text: str) -> str:
    """Answer the tag, so the soak can tell which command an answer is for."""
    return f"answer {text}"
