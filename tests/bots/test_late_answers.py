"""Answers to questions a bot asked before it stopped: ``on_answer``, once, for the plugin
that asked. In-process with the harness here, and with the headless runner killed
(SIGKILL) in ``test_late_answers_headless.py``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roomz import AsyncClient, ClientError, NotSupportedError
from roomz.server.local import LocalServer
from roomz_bots import Bot
from roomz_bots.testing import BotHarness
from tests.interop.published_server import PublishedServer

from .conftest import BotFactory
from .helpers import assert_no_reply, wait_until
from .sample_plugins import asker, lingering, reporter


async def test_an_answer_after_a_restart_goes_to_on_answer_once(tmp_path: Path) -> None:
    """The ask died with the bot: the next run's ``on_answer`` gets the answer, with the
    ask's tag; a restart after that does not hand it over again."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        await chat.say("!deploy prod")
        question = await chat.reply()
        await chat.restart_bot()
        await chat.user.answer(question, "yes")  # type: ignore[union-attr]
        assert (await chat.reply()).text == "Late: Deploying to prod."
        await chat.restart_bot()
        await assert_no_reply(chat)


async def test_an_answer_the_ask_waits_for_is_not_handed_over(tmp_path: Path) -> None:
    """The ask that lives gets its answer; ``on_answer`` hears nothing, now or after a
    restart."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        await chat.say("!deploy prod")
        await chat.user.answer(await chat.reply(), "yes")  # type: ignore[union-attr]
        assert (await chat.reply()).text == "Deploying to prod."
        await chat.restart_bot()
        await assert_no_reply(chat)


async def test_a_timeout_while_the_bot_is_away_goes_to_on_answer(tmp_path: Path) -> None:
    """Nobody answers: the server's timeout, heard by the next run, is handed over with the
    default."""
    async with BotHarness([asker], data_dir=tmp_path,
                          settings={"asker": {"timeout": 1}}) as chat:
        await chat.say("!deploy prod")
        await chat.reply()
        await chat.stop_bot()
        await asyncio.wait_for(_until_timed_out(chat), 10)
        await chat.start_bot()
        assert (await chat.reply()).text == "Late: Not deploying to prod."
        await assert_no_reply(chat)


async def _until_timed_out(chat: BotHarness) -> None:
    while not any(m.raw.get("timed_out") for m in chat.messages):
        await asyncio.sleep(0.05)


async def test_a_poll_across_a_restart_hands_over_every_answer_at_its_timeout(
        tmp_path: Path) -> None:
    """One answer before the restart, one after: ``on_answer`` gets both in the counts,
    once, at the poll's timeout."""
    async with BotHarness([asker], data_dir=tmp_path,
                          settings={"asker": {"timeout": 2}}) as chat:
        await chat.say("!vote lunch")
        question = await chat.reply()
        await chat.user.answer(question, "tea")  # type: ignore[union-attr]
        await chat.restart_bot()
        link = await chat.server.request_link(chat.email)
        other = AsyncClient(chat.server.url, link.token, connection_timeout=5.0)
        await other.connect()
        try:
            await other.answer(question.raw, "coffee")
            assert (await chat.reply(timeout=10)).text == "Late: lunch: tea 1, coffee 1"
        finally:
            await other.disconnect()
        await assert_no_reply(chat)


async def test_questions_another_asked_are_not_handed_over(tmp_path: Path) -> None:
    """The user's own question, answered, is no concern of the bot's ``on_answer``."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        assert chat.user is not None
        asking = asyncio.ensure_future(chat.user.ask("Deploy to prod?", ["yes", "no"],
                                                     timeout=30))
        try:
            while not any(m.content_type == "application/x-question" for m in chat.messages):
                await asyncio.sleep(0.02)
            question = next(m for m in chat.messages
                            if m.content_type == "application/x-question")
            await chat.user.answer(question, "yes")
            assert (await asyncio.wait_for(asking, 5)).choice == "yes"
        finally:
            asking.cancel()
        await assert_no_reply(chat)


async def test_a_tag_the_store_cannot_keep_is_refused_before_asking(tmp_path: Path) -> None:
    """``tag`` must be JSON: ValueError naming it, and no question goes out."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        assert isinstance(chat.bot, Bot)
        with pytest.raises(ValueError, match=r"the tag of a question must be JSON.*\{1, 2\}"):
            await chat.bot.ask("Deploy?", ["yes", "no"], timeout=5, plugin="asker",
                               tag={1, 2})
        await assert_no_reply(chat)


async def test_an_answer_a_stopping_bot_hears_is_left_to_its_next_run(tmp_path: Path) -> None:
    """The ask gave up waiting; the answer comes while the bot stops (its shutdown hooks
    run): not handed over then, and the bot's place stays before it, so the next run
    hears it again and hands it over."""
    lingering.reset()
    async with BotHarness([asker, lingering], data_dir=tmp_path) as chat:
        assert chat.user is not None and chat.bot is not None
        async with answered_while_stopping(chat):
            bot = chat.bot
            await wait_until(lambda: any(m.raw.get("answer_to") for m in chat.messages))
            answer = next(m for m in chat.messages if m.raw.get("answer_to"))
            await wait_until(lambda: bot.client.cursor == answer.raw["cursor"],
                             what="the stopping bot to hear the answer")
        await chat.start_bot()
        assert (await chat.reply()).text == "Late: Deploying to prod."
        await assert_no_reply(chat)


async def test_a_plugin_without_on_answer_has_its_late_answer_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Nobody can act on it: one warning says the answer is lost, naming the plugin."""
    async with BotHarness([reporter], data_dir=tmp_path) as chat:
        assert chat.user is not None
        await chat.say("!deploy")
        question = await chat.reply()
        await chat.restart_bot()
        await chat.user.answer(question, "yes")
        await assert_no_reply(chat)
        (line,) = [r.getMessage() for r in caplog.records if "is lost" in r.getMessage()]
        assert line == ("bot testbot: the answer 'yes' to 'Deploy to production?', asked by "
                        "plugin reporter, is lost: no ask() waits for it, and the plugin has no "
                        "on_answer hook (or is gone)")


async def test_a_question_long_past_its_timeout_is_forgotten_as_the_bot_starts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A week after its timeout, no answer is coming: the note goes, with a warning."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        await chat.say("!deploy prod")
        await chat.reply()
        await chat.stop_bot()
        chat.clock.advance(8 * 24 * 3600)
        await chat.start_bot()
        assert chat.bot is not None
        assert not list(chat.bot.store_for("_bot").items("question ")), "still noted"
        assert "forgetting the question 'Deploy to prod?' of plugin asker: no answer " \
               "reached the bot within a week of its timeout" in caplog.text


async def _asking_prod(chat: BotHarness) -> asyncio.Task[str | None]:
    """The bot's ``ask`` of the sample plugin's deploy question, in a task of its own."""
    assert chat.bot is not None
    return asyncio.ensure_future(chat.bot.ask("Deploy to prod?", ["yes", "no"], timeout=30,
                                              default="no", plugin="asker",
                                              tag={"target": "prod"}))


async def test_an_ask_cut_short_after_its_question_is_heard_hands_over_its_answer(
        tmp_path: Path) -> None:
    """The server broadcasts a question (the asker included) before it acknowledges it: an
    ask cancelled between the two was asked, and its answer goes to ``on_answer``."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        assert chat.user is not None and chat.bot is not None
        asking = await _asking_prod(chat)

        def cut_short(data: dict[str, object]) -> None:  # after the bot heard its question
            if "question_data" in data:
                asking.cancel()

        chat.bot.client.on("message", cut_short)
        question = await chat.reply()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asking, 5)
        chat.bot.client.off("message", cut_short)
        await chat.user.answer(question, "yes")
        assert (await chat.reply()).text == "Late: Deploying to prod."
        await assert_no_reply(chat)


async def test_an_ask_whose_acknowledgement_is_late_hands_over_its_answer(
        tmp_path: Path) -> None:
    """No acknowledgement in time is no refusal: the server may have taken the question,
    and when it did, its answer goes to ``on_answer``."""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        assert chat.user is not None and chat.bot is not None
        patience, chat.bot.client.connection_timeout = chat.bot.client.connection_timeout, 1e-6
        try:
            with pytest.raises(ClientError, match="the question may not have been asked: no "
                                                  "acknowledgement"):
                await asyncio.wait_for(await _asking_prod(chat), 5)
        finally:
            chat.bot.client.connection_timeout = patience
        await chat.user.answer(await chat.reply(), "yes")
        assert (await chat.reply()).text == "Late: Deploying to prod."
        await assert_no_reply(chat)



async def test_a_command_after_an_answer_left_to_the_next_run_is_answered_once(
        tmp_path: Path) -> None:
    """The stopping bot keeps its place before an answer it left to its next run, which
    hears again what came after: a command among it is answered then, not twice."""
    lingering.reset()
    async with BotHarness([asker, lingering], data_dir=tmp_path) as chat:
        assert chat.user is not None and chat.bot is not None
        async with answered_while_stopping(chat):
            command = await chat.say("!help deploy")
            bot = chat.bot
            await wait_until(lambda: any(m.raw.get("id") == command["message_id"]
                                         and bot.client.cursor == m.raw["cursor"]
                                         for m in chat.messages),
                             what="the stopping bot to hear the command")
        await chat.start_bot()
        await chat.say("!help help")  # answered after whatever the next run heard again
        await wait_until(lambda: any(m.text.startswith("!help [command]")
                                     for m in chat.messages), what="the help line")
        texts = [m.text for m in chat.messages]
        assert texts.count("Late: Deploying to prod.") == 1, texts
        assert texts.count("!deploy <target...>: Ask before deploying to TARGET.") == 1, texts


async def test_a_stopping_bot_on_a_server_without_history_hands_over_at_once(
        tmp_path: Path) -> None:
    """No next run will hear the answer again (nothing is replayed): the stopping bot hands
    it over as it comes, and answers the command after it."""
    lingering.reset()
    chat = BotHarness([asker, lingering], data_dir=tmp_path)
    chat.server = LocalServer(history=False)
    async with chat:
        assert chat.user is not None and chat.bot is not None
        async with answered_while_stopping(chat):
            assert (await chat.reply()).text == "Late: Deploying to prod."
            await chat.say("!help deploy")
            assert (await chat.reply()).text.startswith("!deploy <target...>")


async def test_an_ask_cancelled_as_its_answer_arrives_hands_it_over(tmp_path: Path) -> None:
    """The answer came, and the ask was cancelled before it could return it: the answer is
    not heard again, so ``on_answer`` gets it. (Python 3.10 and 3.11's ``wait_for`` returns
    the answer despite the cancel; 3.12's raises it.)"""
    async with BotHarness([asker], data_dir=tmp_path) as chat:
        assert chat.user is not None and chat.bot is not None
        asking = await _asking_prod(chat)
        question = await chat.reply()

        def cut_short(data: dict[str, object]) -> None:  # the answer heard, not yet returned
            if "answer_to" in data:
                asking.cancel()

        chat.bot.client.on("message", cut_short)
        await chat.user.answer(question, "yes")
        returned = await asyncio.wait_for(asyncio.gather(asking, return_exceptions=True), 5)
        chat.bot.client.off("message", cut_short)
        if isinstance(returned[0], asyncio.CancelledError):
            assert (await chat.reply()).text == "Late: Deploying to prod."
        else:
            assert list(returned) == ["yes"]
        await assert_no_reply(chat)


async def test_an_ask_on_the_published_server_is_refused_and_leaves_no_note(
        published_python: Path, make_bot: BotFactory) -> None:
    """The published 0.4.0 server has no questions: NotSupportedError, and nothing is kept
    for an answer that will never come."""
    email = "tester@example.com"
    async with PublishedServer(published_python, allowed_emails=[email]) as published:
        bot = await make_bot("asking", published.localhost_url,
                             (await published.request_link(email)).token, [asker])
        with pytest.raises(NotSupportedError, match="does not support questions"):
            await asyncio.wait_for(bot.ask("Deploy?", ["yes", "no"], timeout=5,
                                           plugin="asker", tag="prod"), 5)
        assert list(bot.store_for("_bot").items("asking ")) == []
        assert list(bot.store_for("_bot").items("question ")) == []


@contextlib.asynccontextmanager
async def answered_while_stopping(chat: BotHarness) -> AsyncIterator[None]:
    """``!hurry prod`` (whose ask gives up at once), then the bot stopped and, while its
    shutdown hook lingers, the question answered; the stop ends as the block does."""
    assert chat.user is not None
    await chat.say("!hurry prod")
    question = await chat.reply()
    assert (await chat.reply()).text == "No time to wait for prod."
    stopping = asyncio.ensure_future(chat.stop_bot())
    try:
        await asyncio.wait_for(lingering.STOPPING.wait(), 5)
        await chat.user.answer(question, "yes")
        yield
    finally:
        lingering.RELEASE.set()
        await asyncio.wait_for(stopping, 10)
