"""A person's web browser, as far as sign-in pages go, on a real HTTP client (aiohttp).

It asks for HTML as browsers do, keeps cookies (IP-address hosts included), follows
redirects, reads the forms a page shows, and submits one with the fields the page gave it
plus what the person typed, sending the ``Origin`` of the page it is on, as browsers do.
A mail scanner is the same GET with nobody behind it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=10)
BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,*/*;q=0.8")
BROWSER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
#: What link scanners send when they fetch a link from a mail to look at it.
SCANNERS = [
    {"Accept": BROWSER_ACCEPT, "User-Agent": BROWSER_AGENT},
    {"Accept": "text/html", "User-Agent": "Microsoft Office/16.0 (SafeLinks preview)"},
    {"Accept": "text/html, */*", "User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
    {"Accept": "application/xhtml+xml", "User-Agent": "Slackbot-LinkExpanding 1.0"},
]


@dataclass
class Form:
    """One ``<form>`` of a page: where it posts, and the fields it carries."""

    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> value, hidden ones filled
    buttons: list[str] = field(default_factory=list)  # the buttons' labels


@dataclass
class Page:
    """What the browser shows: the final URL after redirects, status, text and forms."""

    url: str
    status: int
    text: str
    forms: list[Form]
    headers: dict[str, str]

    def form(self, button: str) -> Form:
        """The form with the button labelled ``button``."""
        for form in self.forms:
            if button in form.buttons:
                return form
        raise AssertionError(f"no form with a {button!r} button on {self.url}:\n{self.text}")

    @property
    def error(self) -> str | None:
        """The ``error`` of ``/?error=...`` this page is, if it is one."""
        query = urlsplit(self.url).query
        return next((v for k, _, v in (p.partition("=") for p in query.split("&"))
                     if k == "error"), None)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("method", "get").lower(), a.get("action", "")))
        elif tag == "input" and self.forms and "name" in a:
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._button = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            self.forms[-1].buttons.append("".join(self._button).strip())
            self._button = None


class Browser:
    """``async with Browser() as browser:`` then ``await browser.open(url)`` and
    ``await browser.submit(page, "Sign in here")``."""

    def __init__(self) -> None:
        # A browser keeps cookies for IP-address hosts too; aiohttp's jar needs unsafe=True.
        self.http = aiohttp.ClientSession(
            timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"Accept": BROWSER_ACCEPT, "User-Agent": BROWSER_AGENT})

    async def open(self, url: str) -> Page:
        """GET ``url`` as a person clicking it would, following redirects."""
        async with self.http.get(url) as resp:
            return await _page(resp)

    async def submit(self, page: Page, button: str, origin: str | None = "same",
                     **typed: str) -> Page:
        """Press ``button`` on ``page`` after typing ``typed`` into its fields. ``origin``
        is the ``Origin`` header: the page's own by default, or another, or None for none."""
        form = page.form(button)
        target = urljoin(page.url, form.action)
        headers = {}
        if origin == "same":
            parts = urlsplit(page.url)
            headers["Origin"] = f"{parts.scheme}://{parts.netloc}"
        elif origin is not None:
            headers["Origin"] = origin
        async with self.http.post(target, data={**form.fields, **typed},
                                  headers=headers) as resp:
            return await _page(resp)

    async def me(self, server_url: str) -> str | None:
        """The email this browser is signed in as on ``server_url`` (``/auth/me``), or None."""
        async with self.http.get(f"{server_url}/auth/me") as resp:
            return str((await resp.json())["user"]["email"]) if resp.status == 200 else None

    async def close(self) -> None:
        """Close the browser."""
        await self.http.close()

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


async def _page(resp: aiohttp.ClientResponse) -> Page:
    text = await resp.text()
    parser = _Forms()
    parser.feed(text)
    return Page(str(resp.url), resp.status, text, parser.forms, dict(resp.headers))


async def scan(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """A mail scanner's look at a link: GET (and HEAD) with ``headers`` and no cookies, no
    redirects followed; returns the GET's status and content type."""
    async with aiohttp.ClientSession(timeout=TIMEOUT,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.head(url, headers=headers, allow_redirects=False):
            pass
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            await resp.read()
            return resp.status, resp.content_type


async def page_asking_for_the_code(browser: Browser, url: str) -> Page:
    """Open the link ``url`` until its page asks for the waiting client's code (it does once
    that client has polled)."""
    page = await browser.open(url)
    for _ in range(100):
        if any("Sign the terminal in" in form.buttons for form in page.forms):
            return page
        await asyncio.sleep(0.1)
        page = await browser.open(url)
    raise AssertionError(f"the page never asked for the code:\n{page.text}")
