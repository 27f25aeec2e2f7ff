"""The chat page's files and headers, over HTTP: the vendored Socket.IO client is the npm
release it says it is, the page is small, cached by versioned URLs, and locked down."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import aiohttp

import roomz.backoff
import roomz.cli
import roomz_bots.host
from roomz.server.local import LocalServer

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "roomz" / "server" / "static"
VENDOR = STATIC / "vendor"
HTTP = aiohttp.ClientTimeout(total=10)
#: The page's own weight limit, Socket.IO's client left out.
MOST_BYTES = 100_000


async def fetch(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: status, headers and body."""
    headers = {"Cookie": f"session_token={cookie}"} if cookie else {}
    async with aiohttp.ClientSession(timeout=HTTP) as http, http.get(url,
                                                                     headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def linked(page: str) -> list[str]:
    """The URLs of the scripts and stylesheets ``page`` loads."""
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', page)


def test_the_vendored_client_is_the_pinned_release_with_its_checksum() -> None:
    """socket.io.min.js has the SHA-256 recorded by ./dev vendor, and is the version that
    ./dev pins (its banner says so); its MIT licence travels with it."""
    recorded, name = (VENDOR / "socket.io.min.js.sha256").read_text().split()
    script = (VENDOR / name).read_bytes()
    version = (VENDOR / "socket.io-client.version").read_text().strip()

    assert hashlib.sha256(script).hexdigest() == recorded
    assert script.startswith(f"/*!\n * Socket.IO v{version}\n".encode())
    assert re.search(rf"^SOCKET_IO_CLIENT={re.escape(version)}\b",
                     (ROOT / "dev").read_text(), re.M)
    assert version.startswith("4.")  # Engine.IO 4 and Socket.IO protocol 5, as our server
    assert "MIT License" in (VENDOR / "socket.io-client.LICENSE").read_text()


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
            if "socket.io" not in url:
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
    assert {url.rsplit("/", 1)[1] for url in urls} == {"roomz.css", "chat.js",
                                                        "socket.io.min.js"}
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
