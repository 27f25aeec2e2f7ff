"""Loop safety: a bot never hears itself, nor (unless it asks) the other bots of its process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roomz_bots.testing import BotHarness
from tests.interop.published_server import PublishedServer

from .conftest import BotFactory
from .helpers import messages_from, wait_until
from .sample_plugins import JOURNAL, deaf, echo_all, listener

QUIET = 0.5  # long enough for a loop to show itself many times over


async def test_an_echo_everything_plugin_does_not_loop() -> None:
    """It echoes the user once, and never its own echo."""
    async with BotHarness([echo_all]) as chat:
        await chat.say("hello")
        assert (await chat.reply()).text == "hello"
        await chat.no_reply(within=QUIET)
        assert chat.bot is not None
        assert [m.text for m in messages_from(chat, chat.bot.connection_id)] == ["hello"]


async def test_a_bot_does_not_run_the_commands_it_says_itself() -> None:
    """``!echo !echo loop`` makes the bot say ``!echo loop``, which it does not obey."""
    async with BotHarness(["echo"]) as chat:
        await chat.say("!echo !echo loop")
        assert (await chat.reply()).text == "!echo loop"
        await chat.no_reply(within=QUIET)


async def test_no_loop_on_the_published_server(published_python: Path,
                                               make_bot: BotFactory,
                                               watchers: Callable[..., Any]) -> None:
    """Published server (no connection_id, message before ack): no bot hears itself or the other."""
    email = "tester@example.com"
    async with PublishedServer(published_python, allowed_emails=[email]) as published:
        url = published.localhost_url
        await make_bot("echoer", url, (await published.request_link(email)).token,
                       [echo_all, "echo"], display_name="EchoBot")
        await make_bot("roller", url, (await published.request_link(email)).token, ["dice"],
                       display_name="DiceBot")
        user = await watchers(url, (await published.request_link(email)).token)

        def said(name: str) -> list[str]:
            return [m.text for _, m in user.seen if m.display_name == name]

        await user.client.send("ping")
        await wait_until(lambda: said("EchoBot") == ["ping"],
                         what=lambda: f"one echo: {user.texts}")
        await asyncio.sleep(QUIET)
        assert said("EchoBot") == ["ping"]

        await user.client.send("!echo !echo loop")
        await wait_until(lambda: len(said("EchoBot")) >= 3,
                         what=lambda: f"two answers: {user.texts}")
        await user.client.send("!echo !roll")
        await wait_until(lambda: len(said("EchoBot")) >= 5,
                         what=lambda: f"two answers: {user.texts}")
        await asyncio.sleep(QUIET)
        assert sorted(said("EchoBot")) == sorted(["ping", "!echo !echo loop", "!echo loop",
                                                  "!echo !roll", "!roll"])
        assert said("DiceBot") == []  # EchoBot's "!roll" is a bot's, not the user's

        await user.client.send("!roll")
        await wait_until(lambda: len(said("DiceBot")) == 1,
                         what=lambda: f"a roll: {user.texts}")
        await asyncio.sleep(QUIET)  # EchoBot echoes "!roll": DiceBot must not roll again
        assert len(said("DiceBot")) == 1 and said("DiceBot")[0].startswith("🎲 1d6: ")
        assert said("EchoBot").count("!roll") == 2
        assert all(m.connection_id is None for _, m in user.seen)  # nothing names the sender
        await user.client.disconnect()


async def test_bots_of_one_process_do_not_hear_each_other(make_bot: BotFactory) -> None:
    """Bot A says ``!hush`` and ``!roll``; bot B (deaf, dice) ignores them, yet answers the user."""
    async with BotHarness(["echo"]) as chat:
        token = (await chat.server.request_link(chat.email)).token
        # Bots of one process share who sent what, as the bots of one host do.
        other = await make_bot("other", chat.server.url, token, [deaf, "dice"],
                               origins=chat.bot.origins)

        await chat.say("!echo !hush")
        assert (await chat.reply()).text == "!hush"
        await chat.say("!echo !roll")
        assert (await chat.reply()).text == "!roll"
        await asyncio.sleep(QUIET)
        assert messages_from(chat, other.connection_id) == []
        assert [e.args["text"] for e in JOURNAL.of("deaf")] == ["!echo !hush", "!echo !roll"]

        await chat.say("!hush")
        await wait_until(lambda: [m.text for m in messages_from(chat, other.connection_id)]
                         == ["heard you"], what="bot B to answer the user")


async def test_a_plugin_with_react_to_bots_hears_the_other_bots(make_bot: BotFactory) -> None:
    """``REACT_TO_BOTS = True``: that plugin answers bot A; a plain plugin of that bot does not."""
    async with BotHarness(["echo"]) as chat:
        token = (await chat.server.request_link(chat.email)).token
        other = await make_bot("other", chat.server.url, token, [listener, deaf],
                               origins=chat.bot.origins)

        await chat.say("!echo !ping")
        assert (await chat.reply()).text == "!ping"
        await wait_until(lambda: [m.text for m in messages_from(chat, other.connection_id)]
                         == ["TestBot: pong"], what="the listener to answer bot A")

        await chat.say("!echo !hush")
        assert (await chat.reply()).text == "!hush"
        await asyncio.sleep(QUIET)
        assert [m.text for m in messages_from(chat, other.connection_id)] == ["TestBot: pong"]
        assert "!ping" in [e.args["text"] for e in JOURNAL.of("listener")]
        assert "!hush" in [e.args["text"] for e in JOURNAL.of("listener")]
        assert [e.args["text"] for e in JOURNAL.of("deaf")] == ["!echo !ping", "!echo !hush"]
        await chat.no_reply(within=0.1)  # bot A does not answer B's "pong" either
