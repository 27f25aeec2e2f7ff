"""The plugin of the README's "Writing a plugin", tested exactly as the README shows."""

from __future__ import annotations

from roomz_bots.testing import BotHarness

from .example_plugin import quotes


async def test_quotes() -> None:
    settings = {"quotes": {"interval_minutes": 10}}
    async with BotHarness([quotes], settings=settings) as chat:
        await chat.say("!quote")
        assert (await chat.reply()).text == "No quotes yet: !grab keeps the last line someone said."

        await chat.say("I <3 tests")  # the hook remembers it
        await chat.say("!grab")
        assert (await chat.reply()).text == "Quote #1 saved."
        await chat.say("!q 1")
        assert (await chat.reply()).text == "#1: “I <3 tests” (tester@example.com)"

        await chat.say("!quote 7")  # a UsageError answers with the usage line
        assert (await chat.reply()).text == "Usage: !quote [number] (there are quotes 1 to 1)"
        await chat.say("!forget one")  # so do arguments that do not convert
        assert (await chat.reply()).text == (
            "Usage: !forget <number> (number must be a whole number, not 'one')")

        await chat.advance(10 * 60)  # the scheduled job falls due, without waiting
        assert (await chat.reply()).text == "Quote time! #1: “I <3 tests” (tester@example.com)"

        await chat.restart_bot()  # the store survives a restart
        await chat.say("!quote")
        assert (await chat.reply()).text == "#1: “I <3 tests” (tester@example.com)"
        await chat.say("!help quote")
        assert (await chat.reply()).text == (
            "!quote [number] (also !q): Show a quote: the one numbered NUMBER, or a random one.")
