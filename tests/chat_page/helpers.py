"""What the chat page's tests do on a page: open it signed in, type, read, take pictures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from tests.server.proc import ServerProcess

#: Where screenshots go (ignored by git): what the page looks like, for people to look at.
SHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "chat-page"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: The longest a page may take to show what it should, in ms: generous, for busy machines.
SHOWN = 15_000

#: ``await browse(url=None, viewport=DESKTOP, block_websocket=False)``: a new page in a
#: fresh browser profile (no cookies), at ``url`` if given.
Browse = Callable[..., Awaitable[Page]]


async def signed_in(browse: Browse, server: ServerProcess, email: str, *,
                    through: str | None = None, clock: bool = False,
                    **options: object) -> Page:
    """The chat page in a new profile holding a session of ``email``, once connected;
    ``through``: the address of a proxy in front of ``server`` that the page goes to;
    ``clock``: Playwright's clock installed first (time runs as ever until a test moves it)."""
    page = await browse(**options)
    if clock:
        await page.clock.install()
    token = await server.sign_in(email)
    url = through or server.url
    await page.context.add_cookies([{"name": "session_token", "value": token, "url": url}])
    await page.goto(url + "/")
    await expect(page.locator("#status")).to_have_text("Connected", timeout=SHOWN)
    return page


async def send(page: Page, text: str) -> None:
    """Type ``text`` in the message box and press Enter, as a person would."""
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")


def messages(page: Page) -> Locator:
    """The texts of the messages shown, as a locator to wait on."""
    return page.locator("#messages .message .text")


async def screenshot(page: Page, name: str) -> None:
    """Save ``page`` at desktop and at phone width under :data:`SHOTS`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        await page.screenshot(path=SHOTS / f"{name}-{size}.png")
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
