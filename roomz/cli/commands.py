"""The terminal's slash commands: ``/login``, ``/token``, ``/name`` and the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import ChatApp


@dataclass(frozen=True)
class SlashCommand:
    """One command: its arguments for the usage line, what it does, and its handler."""

    name: str
    args: str
    help: str
    run: Callable[[ChatApp, str], Awaitable[bool | None]]

    @property
    def needs_args(self) -> bool:
        """True when the usage line has a ``<required>`` argument."""
        return "<" in self.args

    @property
    def usage(self) -> str:
        """``/name <args>``."""
        return f"/{self.name} {self.args}".strip()


async def login(app: ChatApp, email: str) -> None:
    """Ask the server for a sign-in link."""
    await app.login(email)


async def token(app: ChatApp, value: str) -> None:
    """Connect with the token from the sign-in link."""
    await app.connect_with_token(value)


async def reconnect(app: ChatApp, _: str) -> None:
    """Try to reach the server now, instead of waiting for the next attempt."""
    app.reconnect()


async def name(app: ChatApp, value: str) -> None:
    """Set (or with nothing, clear) this connection's display name."""
    await app.set_name(value or None)


async def logout(app: ChatApp, _: str) -> None:
    """Disconnect, stop the bots, and forget the session."""
    await app.logout()


async def quit_(app: ChatApp, _: str) -> bool:
    """Leave the terminal."""
    return False


async def help_(app: ChatApp, _: str) -> None:
    """List the commands."""
    width = max(len(c.usage) for c in COMMANDS)
    lines = [f"{c.usage.ljust(width)}  {c.help}" for c in COMMANDS]
    app.say("Commands:\n" + "\n".join(lines) + "\nAlt+Enter (or Esc, Enter) starts a new line; "
            "Ctrl-C clears the line; Ctrl-D quits.", multiline=True)


async def bots(app: ChatApp, _: str) -> None:
    """Each hosted bot: name, state, plugins."""
    app.show_bots()


async def plugins(app: ChatApp, _: str) -> None:
    """The plugins of every hosted bot."""
    app.show_plugins()


async def reload(app: ChatApp, plugin: str) -> None:
    """Re-import a plugin and give the bots its new code."""
    app.reload_plugin(plugin)


async def bot(app: ChatApp, args: str) -> None:
    """Start or stop a hosted bot."""
    action, _, bot_name = args.partition(" ")
    if action not in ("start", "stop") or not bot_name.strip():
        app.say("Usage: /bot start|stop <name>", "warning")
        return
    await app.start_bot(bot_name.strip()) if action == "start" else await app.stop_bot(
        bot_name.strip())


COMMANDS = [
    SlashCommand("login", "<email>", "email me a sign-in link (then open it, or /token)", login),
    SlashCommand("token", "<token>", "sign in with the token from the mail", token),
    SlashCommand("reconnect", "", "try to reach the server now", reconnect),
    SlashCommand("name", "[name]", "set my display name; without one, clear it", name),
    SlashCommand("logout", "", "disconnect and forget the session", logout),
    SlashCommand("quit", "", "leave (also Ctrl-D)", quit_),
    SlashCommand("help", "", "this list", help_),
    SlashCommand("bots", "", "the bots hosted here: state and plugins", bots),
    SlashCommand("plugins", "", "every plugin the bots run", plugins),
    SlashCommand("reload", "<plugin>", "re-import a plugin without restarting the bots", reload),
    SlashCommand("bot", "start|stop <name>", "start or stop a hosted bot", bot),
]
BY_NAME = {c.name: c for c in COMMANDS}
