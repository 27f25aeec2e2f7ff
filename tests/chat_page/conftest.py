"""One headless Chromium for the whole run (Debian's ``chromium``, driven by Playwright), a
``roomz-server`` subprocess shared by the tests (each signs in its own emails), and a way to
open pages.

Playwright's objects belong to the event loop that made them, so the browser, the server
and these tests all run on pytest-asyncio's session loop.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, async_playwright

from tests.server.proc import RestartableServer, ServerProcess

from .helpers import DESKTOP, SHOWN, Browse

#: Debian's package, as ``./dev test`` installs it; ``ROOMZ_CHROMIUM`` names another.
CHROMIUM = os.environ.get("ROOMZ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, launched once for every test of the chat page."""
    if not os.path.exists(CHROMIUM):  # a skipped browser test would prove nothing
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package "
                    "(./dev test does) or set ROOMZ_CHROMIUM")
    async with async_playwright() as playwright:
        # As root (CI, containers) Chromium's sandbox cannot start.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=["--no-sandbox"])
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def roomz(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """``roomz-server`` with the console mailer (links in its log) for the whole run; the
    address limit raised, since every test asks for links from 127.0.0.1."""
    async with ServerProcess(state_home=tmp_path_factory.mktemp("chat-page-server"),
                             env={"ROOMZ_MAGIC_LINK_ADDRESS_LIMIT": "1000"}) as proc:
        yield proc


@pytest_asyncio.fixture(loop_scope="session")
async def restartable_server(tmp_path: Path) -> AsyncIterator[RestartableServer]:
    """A ``roomz-server`` that a test can kill and start again on the same port and secret."""
    async with RestartableServer(tmp_path / "state") as servers:
        yield servers


@pytest_asyncio.fixture(loop_scope="session")
async def browse(chromium: Browser) -> AsyncIterator[Browse]:
    """Opens pages, each in a browser profile of its own, all closed after the test; a
    script error on any of them fails the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_page(url: str | None = None, *, viewport: dict[str, int] = DESKTOP,
                        block_websocket: bool = False) -> Page:
        context = await chromium.new_context(viewport=viewport)  # type: ignore[arg-type]
        contexts.append(context)
        context.set_default_timeout(SHOWN)
        if block_websocket:
            await context.route_web_socket("**/*", refuse_websocket)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        if url is not None:
            await page.goto(url)
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert not errors, f"script errors on the page: {errors}"


async def refuse_websocket(socket: WebSocketRoute) -> None:
    """A network that lets no WebSocket through: each one is closed as it opens, without
    reaching the server (Playwright's WebSocket routing; the page's HTTP goes on as ever)."""
    await socket.close(code=1008, reason="WebSockets are blocked here")
