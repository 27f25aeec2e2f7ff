"""Plugins answer with Markdown and code, ask questions and run polls: ``Markdown(...)``,
``Code(...)``, ``bot.ask``, ``bot.poll`` and the bundled ``!poll``, on a real server."""

from __future__ import annotations

import asyncio

from roomz.message import Message
from roomz_bots.testing import BotHarness

from .helpers import assert_no_reply
from .sample_plugins import reporter

FAST = {"reporter": {"deploy_timeout": 1.0}}
FAST_POLL = {"poll": {"seconds": 2.0}}


async def test_a_command_returns_markdown_or_code() -> None:
    """A returned Markdown or Code goes out with its content type, language and subject,
    not addressed by name (a name in front would break it)."""
    async with BotHarness([reporter], settings=FAST, display_name="Bot") as chat:
        assert chat.user is not None
        await chat.user.set_display_name("Ann")
        await chat.say("!report")
        report = await chat.reply()
        assert (report.content_type, report.text) == ("text/markdown", reporter.REPORT.strip())
        await chat.say("!snippet")
        snippet = await chat.reply()
        assert (snippet.content_type, snippet.language, snippet.subject) == (
            "text/code", "python", "A snippet")
        assert snippet.text.startswith("def f(x):")


async def test_long_markdown_goes_in_parts_each_with_its_numbered_subject() -> None:
    """Over a message's length, the parts carry the subject numbered and each a whole
    fenced code block."""
    async with BotHarness([reporter], settings=FAST) as chat:
        await chat.say("!long")
        first = await chat.reply()
        parts = [first]
        total = int(first.subject.rsplit("/", 1)[1].rstrip(")")) if first.subject else 1
        for _ in range(total - 1):
            parts.append(await chat.reply())
        assert total >= 3
        assert [p.subject for p in parts] == [f"Long report ({n}/{total})"
                                              for n in range(1, total + 1)]
        assert all(p.content_type == "text/markdown" for p in parts)
        assert all(p.text.count("```") == 2 for p in parts if "step_" in p.text)
        assert parts[0].text.startswith("# Long")
        assert sum(p.text.count("step_") for p in parts) == 150


async def test_bot_ask_returns_the_answer_chosen() -> None:
    """``bot.ask`` posts the question; the person's answer is what it returns."""
    async with BotHarness([reporter], settings={"reporter": {"deploy_timeout": 30}}) as chat:
        assert chat.user is not None
        await chat.say("!deploy")
        question = await chat.reply()
        assert question.question is not None
        assert question.text == "Deploy to production?\n1. yes\n2. no"
        await chat.user.answer(question, "yes")
        assert (await chat.reply()).text == "Deploying now."


async def test_bot_ask_times_out_to_its_default() -> None:
    """Nobody answers: the server's timeout message, then the default's outcome."""
    async with BotHarness([reporter], settings=FAST) as chat:
        await chat.say("!deploy")
        question = await chat.reply()
        timeout = await chat.reply(timeout=10)
        assert timeout.timed_out and timeout.answer_to == question.id
        assert timeout.text == "No answer to “Deploy to production?” within 1 s: no."
        assert (await chat.reply(timeout=10)).text == "Not deploying (no)."


async def test_the_bot_does_not_hear_its_own_question_or_timeout() -> None:
    """Its question and the timeout sent in its name reach none of its own hooks: no loop."""
    async with BotHarness([reporter, "echo"], settings=FAST) as chat:
        await chat.say("!deploy")
        await chat.reply()
        await chat.reply(timeout=10)
        await chat.reply(timeout=10)
        await assert_no_reply(chat)


async def test_poll_counts_the_answers() -> None:
    """``!poll Lunch? | pizza | sushi``: the question, the close, and a Markdown table."""
    async with BotHarness(["poll"], settings=FAST_POLL) as chat:
        assert chat.user is not None
        await chat.say("!poll Lunch? | pizza | sushi")
        question = await chat.reply()
        assert question.question is not None and question.question.keep_open
        assert [c.label for c in question.question.choices] == ["pizza", "sushi"]
        await chat.user.answer(question, "2")
        closed = await chat.reply(timeout=10)
        assert closed.timed_out and closed.text == "“Lunch?” is closed."
        result = await chat.reply(timeout=10)
        assert result.content_type == "text/markdown"
        assert result.text == ("**Lunch?**\n\n| answer | votes |\n|---|---:|\n"
                               "| sushi | 1 |\n| pizza | 0 |")
        await chat.say("!poll Lunch?")
        assert (await chat.reply()).text == (
            "Usage: !poll <question> | <answer> | <answer>... (a question and at least two "
            "answers, split by |)")


async def test_a_poll_open_across_a_restart_still_shows_its_count() -> None:
    """The bot restarts while ``!poll`` is open: the new run shows the table at its end,
    the answer given before the restart counted."""
    async with BotHarness(["poll"], settings=FAST_POLL) as chat:
        assert chat.user is not None
        await chat.say("!poll Lunch? | pizza | sushi")
        question = await chat.reply()
        await chat.user.answer(question, "pizza")
        await chat.restart_bot()
        result = await chat.reply(timeout=10)
        assert result.content_type == "text/markdown"
        assert result.text == ("**Lunch?**\n\n| answer | votes |\n|---|---:|\n"
                               "| pizza | 1 |\n| sushi | 0 |")
        await assert_no_reply(chat)


async def test_the_terminal_and_the_bot_see_the_same_message_view() -> None:
    """A question's Message names its choices, default and timeout for any reader."""
    async with BotHarness([reporter], settings=FAST) as chat:
        await chat.say("!deploy")
        question = (await chat.reply()).question
        assert question is not None
        assert (question.labels(question.default), question.timeout) == (["no"], 1.0)
        await asyncio.sleep(0)
        assert Message({"content": "x"}).question is None
