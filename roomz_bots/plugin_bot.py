"""``PluginBot``: the bot as one plugin sees it, passed to its hooks and commands as ``bot``."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from roomz.content import Rich

from .commands import Command
from .message import Message
from .scheduler import Job
from .store import Store

if TYPE_CHECKING:
    from .bot import Bot
    from .plugins import Plugin


class PluginBot:
    """Send and reply, this plugin's settings and store, and its scheduled jobs."""

    def __init__(self, bot: Bot, plugin: Plugin, settings: Any) -> None:
        self._bot = bot
        self.plugin = plugin
        #: This plugin's ``Settings`` instance (None when it declares none).
        self.settings = settings
        #: A logger named after the plugin.
        self.log = logging.getLogger(f"roomz_bots.plugin.{plugin.name}")

    @property
    def name(self) -> str:
        """The bot's name from the config."""
        return self._bot.name

    @property
    def prefix(self) -> str:
        """What starts a command, ``!`` unless the config says otherwise."""
        return self._bot.prefix

    @property
    def user(self) -> dict[str, Any] | None:
        """The signed-in user (``{"id", "email", "display_name"}``), or None."""
        return self._bot.client.user

    @property
    def clock(self) -> Any:
        """The bot's clock: ``bot.clock.time()`` is the current time (tests can move it)."""
        return self._bot.clock

    @property
    def store(self) -> Store:
        """This plugin's persistent key-value store (SQLite in the user's data directory)."""
        return self._bot.store_for(self.plugin.name)

    @property
    def commands(self) -> list[Command]:
        """Every command the bot answers, of every plugin."""
        return self._bot.commands

    def find_command(self, name: str) -> Command | None:
        """The command called (or aliased) ``name``."""
        return self._bot.find_command(name)

    async def send(self, text: str | Rich) -> dict[str, Any]:
        """Post ``text`` (or ``Markdown(...)``, ``Code(...)``, ``Diff(...)``); waits its turn
        under the flood limit, and for a reconnect (bounded)."""
        return await self._bot.send(text)

    async def reply(self, message: Message, text: str | Rich) -> dict[str, Any]:
        """Answer ``message``, addressing its sender by display name when it has one (plain
        text only: a name in front would break Markdown or code)."""
        return await self._bot.send(f"{message.display_name}: {text}"
                                    if message.display_name and isinstance(text, str)
                                    else text)

    async def ask(self, question: str, answers: Sequence[str], *, timeout: float = 60.0,
                  default: str | None = None, tag: Any = None) -> str | None:
        """Ask the room ``question`` and return the answer chosen (its label), or
        ``default`` when nobody answers within ``timeout`` seconds::

            if await bot.ask("Deploy to production?", ["yes", "no"], default="no") == "yes":

        When the bot stops before the answer comes, the answer goes to this plugin's
        ``on_answer`` hook once it does (in the next run), with ``tag``: what the plugin
        needs to act on it then (anything JSON holds).
        """
        return await self._bot.ask(question, answers, timeout=timeout, default=default,
                                   plugin=self.plugin.name, tag=tag)

    async def poll(self, question: str, answers: Sequence[str], *,
                   timeout: float = 60.0, tag: Any = None) -> Counter[str]:
        """Ask the room ``question`` for ``timeout`` seconds; how often each answer was
        chosen (one answer per connection). When the bot stops meanwhile, this plugin's
        ``on_answer`` gets the counts (and ``tag``) at the poll's timeout."""
        return await self._bot.poll(question, answers, timeout=timeout,
                                    plugin=self.plugin.name, tag=tag)

    def after(self, seconds: float, func: Callable[[], Any], *, name: str = "") -> Job:
        """Run ``func`` (function or coroutine function) once, ``seconds`` from now.

        A ``name`` replaces this plugin's job of that name, if any, and lets :meth:`cancel`
        find it (so do those of :meth:`at` and :meth:`every`).
        """
        return self._bot.scheduler.after(seconds, func, owner=self.plugin.name, name=name)

    def at(self, when: float, func: Callable[[], Any], *, name: str = "") -> Job:
        """Run ``func`` once at the time ``when`` (seconds since the epoch)."""
        return self._bot.scheduler.at(when, func, owner=self.plugin.name, name=name)

    def every(self, seconds: float, func: Callable[[], Any], *, name: str = "") -> Job:
        """Run ``func`` every ``seconds`` until the bot stops or the job is cancelled."""
        return self._bot.scheduler.every(seconds, func, owner=self.plugin.name, name=name)

    def cancel(self, name: str) -> bool:
        """Cancel this plugin's job called ``name``; False when there is none."""
        return self._bot.scheduler.cancel(self.plugin.name, name)
