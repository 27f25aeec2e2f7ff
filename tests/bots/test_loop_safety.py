"""Loop safety: a bot never hears itself, nor (unless it asks) the other bots of its process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from roomz_bots.flood import TokenBucket
from roomz_bots.testing import BotHarness
from tests.interop.published_server import PublishedServer

from .conftest import BotFactory
from .helpers import assert_no_reply, messages_from, wait_until
from .sample_plugins import JOURNAL, deaf, echo_all, listener


def unlimited() -> TokenBucket:
    """A flood limit that never holds a line back: a loop shows itself at once."""
    return TokenBucket(burst=1000, per_second=1000.0)


#: What every bot answers to ``!help help``.
HELP = "!help [command]: List every command, or explain one."


async def test_an_echo_everything_plugin_does_not_loop() -> None:
    """It echoes the user once, and never its own echo."""
    async with BotHarness([echo_all]) as chat:
        await chat.say("hello")
        assert (await chat.reply()).text == "hello"
        # It hears its own echo before the next line: a loop would answer ahead of it.
        await chat.say("and again")
        assert (await chat.reply()).text == "and again"
        assert chat.bot is not None
        assert [m.text for m in messages_from(chat, chat.bot.connection_id)] == ["hello",
                                                                                 "and again"]


async def test_a_bot_does_not_run_the_commands_it_says_itself() -> None:
    """``!echo !echo loop`` makes the bot say ``!echo loop``, which it does not obey."""
    async with BotHarness(["echo"]) as chat:
        await chat.say("!echo !echo loop")
        assert (await chat.reply()).text == "!echo loop"
        await assert_no_reply(chat)


async def test_no_loop_on_the_published_server(published_python: Path,
                                               make_bot: BotFactory,
                                               watchers: Callable[..., Any]) -> None:
    """Published server (no connection_id, message before ack): no bot hears itself or the other."""
    email = "tester@example.com"
    async with PublishedServer(published_python, allowed_emails=[email]) as published:
        url = published.localhost_url
        await make_bot("echoer", url, (await published.request_link(email)).token,
                       [echo_all, "echo"], display_name="EchoBot", flood=unlimited())
        await make_bot("roller", url, (await published.request_link(email)).token, ["dice"],
                       display_name="DiceBot", flood=unlimited())
        user = await watchers(url, (await published.request_link(email)).token)

        def said(name: str, *, asked: bool = False) -> list[str]:
            """What ``name`` said, without what it said for :func:`everyone_has_heard`."""
            return [m.text for _, m in user.seen if m.display_name == name
                    and (asked or m.text not in (HELP, "!help help"))]

        async def everyone_has_heard() -> None:
            """Both bots answer ``!help help`` (EchoBot echoes it too). Each bot hears every
            earlier message first, so what it would say to them comes before its answer."""
            asked = (said("EchoBot", asked=True).count(HELP) + 1,
                     said("DiceBot", asked=True).count(HELP) + 1)
            await user.client.send("!help help")
            await wait_until(lambda: (said("EchoBot", asked=True).count(HELP),
                                      said("DiceBot", asked=True).count(HELP)) == asked,
                             what=lambda: f"both bots' help: {user.texts}")

        await user.client.send("ping")
        await wait_until(lambda: said("EchoBot") == ["ping"],
                         what=lambda: f"one echo: {user.texts}")
        # No second "ping": proved with the exact count after the next everyone_has_heard().

        await user.client.send("!echo !echo loop")
        await wait_until(lambda: len(said("EchoBot")) >= 3,
                         what=lambda: f"two answers: {user.texts}")
        await user.client.send("!echo !roll")
        await wait_until(lambda: len(said("EchoBot")) >= 5,
                         what=lambda: f"two answers: {user.texts}")
        await everyone_has_heard()
        assert sorted(said("EchoBot")) == sorted(["ping", "!echo !echo loop", "!echo loop",
                                                  "!echo !roll", "!roll"])
        assert said("DiceBot") == []  # EchoBot's "!roll" is a bot's, not the user's

        await user.client.send("!roll")
        await wait_until(lambda: len(said("DiceBot")) == 1,
                         what=lambda: f"a roll: {user.texts}")
        await everyone_has_heard()  # EchoBot echoes "!roll": DiceBot must not roll again
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

        # Bot B hears bot A's lines before the user's: its answer to the user comes first.
        await chat.say("!hush")
        await wait_until(lambda: bool(messages_from(chat, other.connection_id)),
                         what="bot B to answer the user")
        assert [m.text for m in messages_from(chat, other.connection_id)] == ["heard you"]
        assert [e.args["text"] for e in JOURNAL.of("deaf")] == ["!echo !hush", "!echo !roll",
                                                                "!hush"]


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
        # Bot B hears bot A's "!hush" before the user's: its answer to the user comes first.
        await chat.say("!hush")
        await wait_until(lambda: len(messages_from(chat, other.connection_id)) >= 2,
                         what="bot B to answer the user")
        assert [m.text for m in messages_from(chat, other.connection_id)] == ["TestBot: pong",
                                                                              "heard you"]
        assert [e.args["text"] for e in JOURNAL.of("listener")] == [
            "!echo !ping", "!ping", "!echo !hush", "!hush", "!hush"]
        assert [e.args["text"] for e in JOURNAL.of("deaf")] == ["!echo !ping", "!echo !hush",
                                                                "!hush"]
        await assert_no_reply(chat)  # bot A does not answer B's "pong" either
