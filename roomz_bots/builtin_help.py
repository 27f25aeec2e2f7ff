"""The built-in ``help`` command: every command of the bot with its usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roomz.content import Markdown

from .commands import command

if TYPE_CHECKING:
    from .plugin_bot import PluginBot


@command(usage="help [command]")
def help(bot: PluginBot, name: str = "") -> str | Markdown:  # noqa: A001 - the command's name
    """List every command, or explain one."""
    prefix = bot.prefix
    if name:
        found = bot.find_command(name.removeprefix(prefix))
        if found is None:
            return f"No command {prefix}{name}. {prefix}help lists them all."
        aliases = f" (also {', '.join(prefix + a for a in found.aliases)})" if found.aliases else ""
        return f"{prefix}{found.usage}{aliases}: {found.help or 'no description'}"
    lines = [f"- `{prefix}{c.usage}`: {c.help}" if c.help else f"- `{prefix}{c.usage}`"
             for c in sorted(bot.commands, key=lambda c: c.name)]
    return Markdown("**Commands**\n\n" + "\n".join(lines))
