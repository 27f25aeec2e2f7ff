"""A test harness for plugin authors: a real server, your bot, and a user who talks to it.

::

    from roomz_bots.testing import BotHarness

    async def test_roll():
        async with BotHarness(["dice"]) as chat:
            await chat.say("!roll 2d6")
            reply = await chat.reply()
            assert reply.text.startswith("🎲 2d6:")

``chat.advance(seconds)`` moves the bot's clock for scheduled jobs without sleeping (it
starts at the real time, as the server's timestamps do: commands missed while the bot was
away age by it too);
``chat.drop_connection()`` / ``chat.restore_connection()`` take the server away and back;
``chat.restart_bot()`` stops the bot and starts a new one on the same stores (``stop_bot()``
and ``start_bot()`` do it in two steps, to say something while it is away).

``chat.user`` is the user's :class:`roomz.AsyncClient`: to answer a question the bot asks
(``bot.ask``), read it and answer it::

    await chat.say("!deploy prod")
    question = await chat.reply()
    await chat.user.answer(question, "yes")
    assert (await chat.reply()).text == "Deploying to prod."

An answer given after ``chat.restart_bot()`` (the ask died with the old bot) goes to the
plugin's ``on_answer`` hook, as after a real restart; ``reply()`` reads what it says.

A command that raises answers with one line, which ``reply()`` reads like any other
(``Sorry, !roll failed: ZeroDivisionError in dice.py, line 27 (the bot's log has the
details).``); the exception itself is in the log, where pytest's ``caplog`` finds it (the
record's ``exc_info``). ``reply_errors=False`` turns the line off, as the config's
``reply_errors = false`` does.

The server keeps a question's timeout in real time, which ``advance()`` does not move: to
test what happens when nobody answers, give the plugin a short one through ``settings=``
(at least 1 s) and read the server's timeout message, then the bot's answer, with
``chat.reply(timeout=10)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from roomz import AsyncClient
from roomz.server.local import LocalServer

from .bot import MISSED_COMMAND_MAX_AGE, Bot
from .clock import FakeClock
from .flood import TokenBucket
from .message import Message
from .plugins import Plugin, load_plugin


class BotHarness:
    """Runs one bot with ``plugins`` against an in-process server, and a user beside it."""

    def __init__(self, plugins: Sequence[str | ModuleType | Plugin], *,
                 settings: dict[str, dict[str, Any]] | None = None, prefix: str = "!",
                 display_name: str | None = "TestBot", email: str = "tester@example.com",
                 data_dir: Path | None = None, flood: TokenBucket | None = None,
                 timeout: float = 5.0,
                 missed_command_max_age: float = MISSED_COMMAND_MAX_AGE,
                 reply_errors: bool = True) -> None:
        self.plugins = [p if isinstance(p, Plugin) else load_plugin(p) for p in plugins]
        self.settings = settings or {}
        _check_settings(self.settings, [load_plugin("help"), *self.plugins])
        self.prefix = prefix
        self.display_name = display_name
        self.email = email
        self._own_data = None if data_dir else tempfile.TemporaryDirectory(prefix="roomz-bot-")
        self.data_dir = data_dir or Path(self._own_data.name)  # type: ignore[union-attr]
        self.flood = flood or TokenBucket(burst=1000, per_second=1000.0)
        self.timeout = timeout
        self.missed_command_max_age = missed_command_max_age
        self.reply_errors = reply_errors
        self.clock = FakeClock(time.time())  # the server stamps messages with real time
        self.server = LocalServer()
        self.bot: Bot | None = None
        #: The user beside the bot (the same account), connected inside ``async with``.
        self.user: AsyncClient | None = None
        self.messages: list[Message] = []
        self._arrived = asyncio.Condition()
        self._read = 0

    async def _new_client(self) -> AsyncClient:
        link = await self.server.request_link(self.email)
        client = AsyncClient(self.server.url, link.token, reconnect_delay=0.1,
                             max_reconnect_attempts=50, connection_timeout=self.timeout)
        return client

    async def start_bot(self) -> Bot:
        """Start a bot with the harness's plugins (done on entering the ``async with``)."""
        client = await self._new_client()
        self.bot = Bot("testbot", client, self.plugins, display_name=self.display_name,
                       prefix=self.prefix, settings=self.settings, flood=self.flood,
                       clock=self.clock, data_dir=self.data_dir,
                       missed_command_max_age=self.missed_command_max_age,
                       reply_errors=self.reply_errors)
        await self.bot.start()
        return self.bot

    async def stop_bot(self) -> None:
        """Stop the bot, as its process ending does; :meth:`start_bot` starts a new one on
        the same stores, which answers the commands it missed meanwhile."""
        assert self.bot is not None
        await self.bot.stop()

    async def restart_bot(self) -> Bot:
        """Stop the bot and start a fresh one on the same stores (a process restart)."""
        await self.stop_bot()
        return await self.start_bot()

    async def _on_message(self, data: dict[str, Any]) -> None:
        async with self._arrived:
            self.messages.append(Message(data))
            self._arrived.notify_all()

    async def say(self, text: str) -> dict[str, Any]:
        """Send ``text`` as the user; returns the server's acknowledgement."""
        assert self.user is not None
        return await self.user.send(text)

    async def reply(self, timeout: float | None = None) -> Message:
        """The bot's next message not read yet, waiting for it up to ``timeout`` seconds."""
        def from_bot() -> list[Message]:
            assert self.bot is not None
            return [m for m in self.messages[self._read:]
                    if m.connection_id == self.bot.connection_id]

        async def wait() -> Message:
            async with self._arrived:
                await self._arrived.wait_for(lambda: bool(from_bot()))
            message = from_bot()[0]
            self._read = self.messages.index(message) + 1
            return message

        return await asyncio.wait_for(wait(), timeout or self.timeout)

    async def no_reply(self, within: float = 0.3) -> None:
        """Assert the bot says nothing more for ``within`` seconds."""
        try:
            message = await self.reply(timeout=within)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"the bot said {message.text!r}")

    async def advance(self, seconds: float) -> None:
        """Move the bot's clock forward and let the jobs that fall due run."""
        self.clock.advance(seconds)
        for _ in range(20):  # a few loop turns: the scheduler wakes, then each job runs
            await asyncio.sleep(0)

    async def drop_connection(self) -> None:
        """Stop the server: the bot and the user lose their connections."""
        await self.server.stop()

    async def restore_connection(self) -> None:
        """Start the server again on the same port; wait until the bot and user are back."""
        await self.server.start()

        async def back() -> None:
            while not (self.bot and self.bot.client.connected and self.user
                       and self.user.connected):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(back(), self.timeout * 2)

    async def __aenter__(self) -> BotHarness:
        await self.server.__aenter__()
        self.user = await self._new_client()
        self.user.on("message", self._on_message)
        await self.user.connect()
        await self.start_bot()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.bot is not None:
            await self.bot.stop()
        if self.user is not None:
            await self.user.disconnect()
        await self.server.__aexit__(*exc_info)
        if self._own_data is not None:
            self._own_data.cleanup()


def _check_settings(settings: dict[str, dict[str, Any]], plugins: list[Plugin]) -> None:
    """Refuse settings no plugin reads (a typo would leave the test on the defaults):
    ``ValueError`` naming the plugin or the key. Values are checked by the bot."""
    by_name = {plugin.name: plugin for plugin in plugins}
    for name, values in settings.items():
        plugin = by_name.get(name)
        if plugin is None:
            raise ValueError(f"settings for {name!r}: no plugin of that name here "
                             f"(plugins: {', '.join(by_name)})")
        if plugin.settings_type is None:
            raise ValueError(f"settings for {name!r}: the plugin declares no settings")
        known = [f.name for f in dataclasses.fields(plugin.settings_type)]
        unknown = sorted(values.keys() - set(known))
        if unknown:
            raise ValueError(f"settings for {name!r}: unknown key {unknown[0]!r} "
                             f"(known: {', '.join(known)})")
