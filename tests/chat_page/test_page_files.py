"""The chat page's files and headers, over HTTP: the vendored Socket.IO client, markdown-it,
DOMPurify and highlight.js are the npm releases they say they are, the page is small, cached by
versioned URLs, and locked down."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import aiohttp
import pytest

import roomz.backoff
import roomz.cli
import roomz_bots.host
from roomz.server.local import LocalServer

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "roomz" / "server" / "static"
VENDOR = STATIC / "vendor"
HTTP = aiohttp.ClientTimeout(total=10)
#: The page's own weight limit, the vendored libraries left out.
MOST_BYTES = 100_000
#: Each vendored library: its npm package, file, the variable of ./dev that pins it, and
#: the words its build or licence starts with.
VENDORED = [
    ("socket.io-client", "socket.io.min.js", "SOCKET_IO_CLIENT", "/*!\n * Socket.IO v{v}\n",
     "MIT License"),
    ("markdown-it", "markdown-it.min.js", "MARKDOWN_IT", "(function(e,t){{",  # no banner
     "Permission is hereby granted"),
    ("dompurify", "purify.min.js", "DOMPURIFY", "/*! @license DOMPurify {v} |",
     "Apache License"),
    ("highlight.js", "highlight.min.js", "HIGHLIGHT_JS", "/*!\n  Highlight.js v{v} (git:",
     "BSD 3-Clause License"),
]


async def fetch(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: status, headers and body."""
    headers = {"Cookie": f"session_token={cookie}"} if cookie else {}
    async with aiohttp.ClientSession(timeout=HTTP) as http, http.get(url,
                                                                     headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def linked(page: str) -> list[str]:
    """The URLs of the scripts and stylesheets ``page`` loads."""
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', page)


@pytest.mark.parametrize(("package", "file", "pin", "banner", "licence"), VENDORED,
                         ids=[v[0] for v in VENDORED])
def test_each_vendored_library_is_the_pinned_release_with_its_checksum(
        package: str, file: str, pin: str, banner: str, licence: str) -> None:
    """Each file has the SHA-256 recorded by ./dev vendor, and is the version that ./dev
    pins (a banner says so, where the build has one); its licence travels with it."""
    recorded, name = (VENDOR / f"{file}.sha256").read_text().split()
    script = (VENDOR / name).read_bytes()
    version = (VENDOR / f"{package}.version").read_text().strip()

    assert name == file and hashlib.sha256(script).hexdigest() == recorded
    assert script.startswith(banner.format(v=version).encode())
    assert re.search(rf"^{pin}={re.escape(version)}\b", (ROOT / "dev").read_text(), re.M)
    assert licence in (VENDOR / f"{package}.LICENSE").read_text()


def test_the_socket_io_client_speaks_our_servers_protocol() -> None:
    """Socket.IO client 4: Engine.IO 4 and Socket.IO protocol 5, as our server."""
    assert (VENDOR / "socket.io-client.version").read_text().startswith("4.")


def test_the_page_waits_as_the_terminal_does() -> None:
    """chat.js's reconnection waits are the terminal's: the first wait, the cap, the jitter."""
    script = (STATIC / "chat.js").read_text()

    def number(name: str) -> float:
        match = re.search(rf"const {name} = ([\d.]+);", script)
        assert match, name
        return float(match[1])

    assert number("RECONNECT_DELAY_MS") == roomz_bots.host.FIRST_RECONNECT_DELAY * 1000
    assert number("RECONNECT_DELAY_MAX_MS") == roomz.cli.DEFAULT_RECONNECT_MAX_DELAY * 1000
    assert number("RECONNECT_JITTER") == roomz.backoff.JITTER


async def test_the_page_weighs_under_100_kb_without_socket_io(server: LocalServer) -> None:
    """Signed out and signed in: the HTML, its stylesheet and its script together."""
    cookie = await server.sign_in("ada@example.com")
    for session in (None, cookie):
        status, _, page = await fetch(server.url + "/", session)
        assert status == 200
        total = len(page)
        for url in linked(page.decode()):
            if "/vendor/" not in url:
                total += len((await fetch(server.url + url))[2])
        print(f"chat page ({'signed in' if session else 'signed out'}): {total} bytes")
        assert total < MOST_BYTES


async def test_the_page_is_locked_down_and_its_files_cached_by_version(
        server: LocalServer) -> None:
    """/ allows only its own scripts, styles and connections, no framing, no sniffing, no
    cache; its files live at URLs naming their content, cached for a year; a URL of
    another version is 404."""
    status, headers, page = await fetch(server.url + "/")
    csp = headers["Content-Security-Policy"]
    assert status == 200
    assert "default-src 'none'" in csp and "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert b"<script>" not in page and b"<style" not in page  # no inline script or style
    assert not re.search(rb"<[^>]*\son\w+=", page)  # no event handler attributes

    urls = linked(page.decode())
    assert {url.rsplit("/", 1)[1] for url in urls} == {
        "roomz.css", "chat.js", "rich.js", "socket.io.min.js", "markdown-it.min.js",
        "purify.min.js", "highlight.min.js"}
    for url in urls:
        status, headers, body = await fetch(server.url + url)
        digest = url.split("/")[2]
        assert status == 200 and hashlib.sha256(body).hexdigest().startswith(digest)
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Type"].startswith(("text/javascript", "text/css"))
    stale = re.sub(r"/static/\w+/", "/static/000000000000/", urls[0])
    assert (await fetch(server.url + stale))[0] == 404
    assert (await fetch(server.url + "/static/" + urls[0].split("/")[2] + "/../pages.py"
                        ))[0] == 404
