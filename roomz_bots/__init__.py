"""Roomz bots: every chat event goes through pluggy to every plugin of a bot.

A plugin is a module::

    from roomz_bots import command, hookimpl

    @command
    def echo(*, text: str) -> str:
        \"\"\"Say it back.\"\"\"
        return text

    @hookimpl
    async def on_user_joined(bot, event):
        await bot.send("Welcome back!")
"""

from roomz.content import Code, Diff, Markdown

from .asked import LateAnswer
from .bot import Bot
from .commands import Command, UsageError, command
from .hookspecs import hookimpl
from .message import Message, display_name_of
from .plugin_bot import PluginBot
from .plugins import Plugin, PluginError, load_plugin

__all__ = ["Bot", "Code", "Command", "Diff", "LateAnswer", "Markdown", "Message", "Plugin",
           "PluginBot", "PluginError", "UsageError", "command", "display_name_of", "hookimpl",
           "load_plugin"]
