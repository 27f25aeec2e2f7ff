"""Rich messages on the chat page, in headless Chromium against a real ``roomz-server``
with a real bot (``roomz-cli --headless``): Markdown drawn through the vendored markdown-it
and DOMPurify with hostile text inert, code under a collapsible subject, a question
answered with a button or timing out, and the list of connections (a terminal, the page
and two bots)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Dialog, Page, expect

from roomz import AsyncClient
from roomz.content import Code
from roomz.questions import Choice
from roomz.session_cache import SessionCache
from tests.bots.headless import Cli, bot_config, start_cli
from tests.bots.sample_plugins import reporter
from tests.cli.helpers import open_terminal, text_of
from tests.server.proc import ServerProcess

from .helpers import SHOTS, SHOWN, Browse, screenshot, send, signed_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPORTER = Path(reporter.__file__)


@asynccontextmanager
async def reporter_bot(roomz: ServerProcess, tmp_path: Path, email: str, *,
                       timeout: float = 30.0, more: str = "") -> AsyncIterator[Cli]:
    """``roomz-cli --headless`` running the bot ``roller`` with the reporter plugin, signed
    in as ``email``; its questions open ``timeout`` seconds."""
    session_file = tmp_path / "session.json"
    SessionCache(session_file).save(roomz.url, await roomz.sign_in(email))
    config = bot_config(tmp_path, roomz.url, session_file, plugins=(str(REPORTER), "poll"),
                        more=f"{more}\n[plugins.reporter]\ndeploy_timeout = {timeout}\n")
    cli = await start_cli(config)
    try:
        await cli.wait_for_line("bot roller is running", timeout=SHOWN / 1000)
        yield cli
    finally:
        await cli.kill()


def watch_for_trouble(page: Page) -> tuple[list[str], list[str]]:
    """Dialogs opened (dismissed) and Content-Security-Policy refusals on ``page``."""
    dialogs: list[str] = []
    refused: list[str] = []

    def dismissed(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        asyncio.ensure_future(dialog.dismiss())

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("dialog", dismissed)
    page.on("console", console)
    return dialogs, refused


async def test_a_bots_markdown_reply_is_drawn_and_hostile_text_is_inert(
        browse: Browse, roomz: ServerProcess, tmp_path: Path) -> None:
    """A heading, emphasis, a list, a table and a code block are drawn; the HTML, the
    script and the javascript: link in the same Markdown are text, no element, no dialog,
    and the strict CSP refused nothing."""
    email = "grace.rich@example.com"
    async with reporter_bot(roomz, tmp_path, email):
        page = await signed_in(browse, roomz, email)
        dialogs, refused = watch_for_trouble(page)
        await send(page, "!report")
        report = page.locator("#messages .message .md").last
        await expect(report.locator("h1")).to_have_text("Deploy report")
        await expect(report.locator("strong")).to_have_text("fine")
        await expect(report.locator("li")).to_have_text(["web servers", "databases"])
        await expect(report.locator("tbody tr").last.locator("td")).to_have_text(
            ["db-primary", "degraded", "340"])
        assert "align-right" in (await report.locator("th").last.get_attribute("class") or "")
        await expect(report.locator("pre code")).to_contain_text("def rollback(host):")
        # The fenced block says python: highlight.js colours it.
        await expect(report.locator("pre code .hljs-keyword").first).to_have_text("def")
        await expect(report.locator("p").last).to_contain_text(
            "<img src=x onerror=alert(1)> <script>alert(2)</script>")
        await expect(report.locator("p").last).to_contain_text("[click](javascript:alert(3))")
        await send(page, "after")  # anything the markup could have run has run by now
        await expect(page.locator("#messages .message .text").last).to_have_text("after")
    assert await page.locator("#messages img, #messages script, #messages a").count() == 0
    assert dialogs == [] and refused == []


async def test_a_question_is_answered_with_a_button(browse: Browse, roomz: ServerProcess,
                                                    tmp_path: Path) -> None:
    """The bot's question shows as buttons; pressing "yes" answers it for every
    connection, closes it, and the bot goes on. (The README's picture is taken here.)"""
    email = "hedy.rich@example.com"
    async with reporter_bot(roomz, tmp_path, email):
        page = await signed_in(browse, roomz, email)
        await send(page, "!status")
        await expect(page.locator("#messages .md h1")).to_have_text("Deploy report")
        await send(page, "!deploy")
        question = page.locator("#messages .question").last
        await expect(question.locator(".asked")).to_have_text("Deploy to production?")
        await expect(question.locator(".until")).to_have_text("Open 30 s; then “no”.")
        await page.set_viewport_size({"width": 720, "height": 820})
        await page.locator("#messages").evaluate("list => { list.scrollTop = list.scrollHeight; }")
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SHOTS / "rich-messages.png")
        await question.get_by_role("button", name="yes").click()
        await expect(page.locator("#messages .answer").last).to_have_text(
            "↳ yes (to “Deploy to production?”)")
        await expect(page.locator("#messages .message .text").last).to_have_text(
            "Deploying now.")
        await expect(question.locator(".said")).to_have_text("Answered: yes")
        assert await question.get_by_role("button", name="no").is_disabled()


async def test_a_typed_answer_and_several_choices_reach_the_asker(
        browse: Browse, roomz: ServerProcess) -> None:
    """A client asks; on the page, "other" opens a field whose text goes with the answer,
    and two choices pressed, then "Answer", answer a multiple choice: the asker gets each
    as given, and the page shows each under its question."""
    email = "lin.rich@example.com"
    page = await signed_in(browse, roomz, email)
    client = AsyncClient(roomz.url)
    await client.connect(token=(await roomz.request_link(email)).token)
    try:
        asking = asyncio.create_task(client.ask(
            "Lunch?", ["pizza", Choice("2", "other", free_text=True)], timeout=60))
        question = page.locator("#messages .question", has_text="Lunch?")
        await question.get_by_role("button", name="other").click()
        await question.get_by_label("other").fill("ramen")
        await question.get_by_label("other").press("Enter")
        answer = await asyncio.wait_for(asking, SHOWN / 1000)
        assert (answer.ids, answer.free_text) == (("2",), "ramen")
        await expect(page.locator("#messages .answer").last).to_have_text(
            "↳ other: ramen (to “Lunch?”)")

        asking = asyncio.create_task(client.ask(
            "Which days?", ["mon", "tue", "wed"], multi_select=True, timeout=60))
        question = page.locator("#messages .question", has_text="Which days?")
        for day in ("mon", "wed"):
            await question.get_by_role("button", name=day).click()
        await question.get_by_role("button", name="Answer", exact=True).click()
        answer = await asyncio.wait_for(asking, SHOWN / 1000)
        assert (answer.ids, answer.choices) == (("1", "3"), ("mon", "wed"))
        await expect(question.locator(".said")).to_have_text("Answered: mon, wed")
        assert await question.get_by_role("button", name="tue").is_disabled()
        await screenshot(page, "questions-answered")
    finally:
        await client.disconnect()


async def test_an_unanswered_question_times_out_on_the_page(
        browse: Browse, roomz: ServerProcess, tmp_path: Path) -> None:
    """Nobody presses a button: the server's timeout line shows, the buttons are disabled,
    and the bot takes its default."""
    email = "ida.rich@example.com"
    async with reporter_bot(roomz, tmp_path, email, timeout=1):
        page = await signed_in(browse, roomz, email)
        await send(page, "!deploy")
        question = page.locator("#messages .question").last
        await expect(question.locator(".said")).to_have_text("Closed: timed out.")
        await expect(page.locator("#messages .timed-out")).to_have_text(
            "⏱ No answer to “Deploy to production?” within 1 s: no.")
        await expect(page.locator("#messages .message .text").last).to_have_text(
            "Not deploying (no).")
        assert await question.get_by_role("button", name="yes").is_disabled()


async def test_a_message_with_a_subject_is_collapsed_until_opened(
        browse: Browse, roomz: ServerProcess, tmp_path: Path) -> None:
    """Code under a subject shows the subject only; a click opens it."""
    email = "joan.rich@example.com"
    async with reporter_bot(roomz, tmp_path, email):
        page = await signed_in(browse, roomz, email)
        await send(page, "!snippet")
        block = page.locator("#messages details.subject").last
        await expect(block.locator("summary")).to_have_text("A snippet")
        code = block.locator("pre code")
        await expect(code).to_be_hidden()
        await block.locator("summary").click()
        await expect(code).to_have_text("def f(x):\n    return x + 1")
        assert await code.get_attribute("data-language") == "python"
        await expect(code.locator(".hljs-keyword")).to_have_text(["def", "return"])
        await expect(code.locator(".hljs-title")).to_have_text("f")


async def test_code_is_coloured_and_hostile_code_stays_text(
        browse: Browse, roomz: ServerProcess) -> None:
    """Code in a language highlight.js knows is coloured, and markup in it stays text (no
    element, no dialog, nothing the CSP had to refuse); a language it does not know is
    shown as it came, uncoloured."""
    email = "ada.code@example.com"
    page = await signed_in(browse, roomz, email)
    dialogs, refused = watch_for_trouble(page)
    hostile = '<script>alert(1)</script>\n<img src=x onerror="alert(2)">'
    client = AsyncClient(roomz.url)
    await client.connect(token=(await roomz.request_link(email)).token)
    try:
        for code in (Code(hostile, language="html"), Code("MOVE 1 TO X.", language="cobol-85")):
            assert "error" not in await client.send(code.text, **code.fields())
        await client.send("after")
    finally:
        await client.disconnect()
    await expect(page.locator("#messages .message .text").last).to_have_text("after")
    blocks = page.locator("#messages pre.code code")
    await expect(blocks).to_have_text([hostile, "MOVE 1 TO X."])
    await expect(blocks.first.locator(".hljs-name").first).to_have_text("script")
    assert await blocks.last.locator("span").count() == 0
    assert await page.locator("#messages script, #messages img").count() == 0
    assert dialogs == [] and refused == []
    await screenshot(page, "code")


async def test_who_lists_a_terminal_a_page_and_two_bots(browse: Browse, roomz: ServerProcess,
                                                        tmp_path: Path) -> None:
    """The terminal's /who and the page's list of connections both name all four."""
    email = "katherine.rich@example.com"
    second = '[[bots]]\nname = "second"\ndisplay_name = "Second"\nplugins = ["echo"]\n'
    async with reporter_bot(roomz, tmp_path, email, more=second) as cli:
        await cli.wait_for_line("bot second is running", timeout=SHOWN / 1000)
        page = await signed_in(browse, roomz, email)
        session = tmp_path / "terminal-session.json"
        SessionCache(session).save(roomz.url, await roomz.sign_in(email))
        async with open_terminal(roomz.url, tmp_path, session_file=session) as term:
            await term.wait_for("Connected to")
            line = text_of(await term.command("/who", "4 connections"))
        shown = sorted(entry.strip().split(",")[0] for entry in line.splitlines()[1:])
        assert shown == ["bot roller", "bot second", "page", "terminal"]
        assert "terminal, since" in line and "(this terminal)" in line
        await page.locator("#who summary").click()
        listed = page.locator("#who-list li")
        await expect(listed).to_have_count(3)  # the terminal has left by now
        texts = sorted(await listed.all_text_contents())
        assert texts == ["bot roller, Roller", "bot second, Second", "page (this page)"]
