"""``roomz_bots.testing.BotHarness``: the tool plugin authors test with, tested itself."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from roomz_bots.testing import BotHarness

from .helpers import wait_until
from .sample_plugins import counter, ticker, weather


async def test_say_returns_the_servers_acknowledgement() -> None:
    """``say()`` sends as the user and returns the ack."""
    async with BotHarness(["echo"]) as chat:
        ack = await chat.say("just talking")
    assert ack["status"] == "ok" and ack["message_id"]


async def test_reply_is_the_bots_next_message_not_the_users() -> None:
    """``reply()`` skips the user's own messages and returns the bot's, one after the other."""
    async with BotHarness(["echo"]) as chat:
        await chat.say("!echo one")
        await chat.say("!echo two")
        first, second = await chat.reply(), await chat.reply()
        assert (first.text, second.text) == ("one", "two")
        assert first.label == "TestBot (tester@example.com)"
        assert chat.bot is not None and first.connection_id == chat.bot.connection_id


async def test_reply_times_out_when_the_bot_is_silent() -> None:
    """Nothing to read: ``reply(timeout=...)`` raises TimeoutError after that long."""
    async with BotHarness(["echo"]) as chat:
        await chat.say("not a command")
        with pytest.raises(asyncio.TimeoutError):
            await chat.reply(timeout=0.2)


async def test_no_reply_passes_on_silence_and_fails_when_the_bot_speaks() -> None:
    """``no_reply()`` holds while the bot is quiet and raises, quoting it, when it is not."""
    async with BotHarness(["echo"]) as chat:
        await chat.no_reply(within=0.1)
        await chat.say("!echo oops")
        with pytest.raises(AssertionError, match="oops"):
            await chat.no_reply(within=1.0)


async def test_display_name_and_email_are_options() -> None:
    """Without a display name the bot's messages carry the email alone."""
    async with BotHarness(["echo"], display_name=None, email="author@example.com") as chat:
        await chat.say("!echo hi")
        reply = await chat.reply()
    assert (reply.label, reply.email) == ("author@example.com", "author@example.com")


@pytest.mark.parametrize(("settings", "problem"), [
    ({"weathr": {"city": "Oslo"}}, "settings for 'weathr': no plugin of that name here "
                                   "(plugins: help, weather)"),
    ({"weather": {"city": "Oslo", "dayz": 5}}, "settings for 'weather': unknown key 'dayz' "
                                               "(known: city, units, days)"),
    ({"help": {"verbose": True}}, "settings for 'help': the plugin declares no settings"),
])
def test_settings_no_plugin_reads_are_refused(settings: dict[str, Any], problem: str) -> None:
    """A typo in a plugin's name or a key of ``settings=`` would leave the test running on
    defaults: the harness refuses it, naming it (the config file warns about the same)."""
    with pytest.raises(ValueError) as caught:
        BotHarness([weather], settings=settings)
    assert str(caught.value) == problem


async def test_advance_moves_the_bots_clock_without_sleeping() -> None:
    """``advance(3600)`` runs an hour of jobs at once."""
    async with BotHarness([ticker]) as chat:
        await chat.advance(3600)
        ticks = [(await chat.reply()).text for _ in range(60)]
    assert ticks == [f"tick {n}" for n in range(1, 61)]


async def test_drop_and_restore_connection() -> None:
    """The server goes away (the bot notices) and comes back (bot and user are back, it answers)."""
    async with BotHarness(["echo"]) as chat:
        bot, user = chat.bot, chat.user
        assert bot is not None and user is not None
        await chat.drop_connection()
        await wait_until(lambda: not bot.client.connected, what="the bot to notice")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(http.get(f"{chat.server.url}/healthz"), 5)

        await chat.restore_connection()
        assert bot.client.connected and user.connected
        await chat.say("!echo back")
        assert (await chat.reply()).text == "back"


async def test_restart_bot_is_a_new_bot_on_the_same_stores() -> None:
    """``restart_bot()`` stops the bot and starts a new one: new connection, same stores."""
    async with BotHarness([counter]) as chat:
        old = chat.bot
        assert old is not None
        await chat.say("!count")
        assert (await chat.reply()).text == "count 1"

        new = await chat.restart_bot()

        assert new is chat.bot and new is not old
        assert not old.client.connected
        assert new.connection_id != old.connection_id
        await chat.say("!count")
        assert (await chat.reply()).text == "count 2"


async def test_leaving_the_harness_stops_bot_user_and_server() -> None:
    """After the ``async with`` nothing is left connected or listening."""
    async with BotHarness(["echo"]) as chat:
        url = chat.server.url
    assert chat.bot is not None and chat.user is not None
    assert not chat.bot.client.connected and not chat.user.connected
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(http.get(f"{url}/healthz"), 5)
