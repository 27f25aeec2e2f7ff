"""An attacker asks for a sign-in link with a forged ``Host`` header: the link still points
at the server itself, never at the attacker."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from roomz.server.local import LocalServer
from tests.server.proc import ServerProcess, run_command

TIMEOUT = aiohttp.ClientTimeout(total=10)
FORGED = {"Host": "attacker.example"}
SECRET = "s" * 40


async def request_link(url: str, email: str, headers: dict[str, str]) -> int:
    """POST a JSON sign-in request with extra ``headers``; returns the status."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.post(
        f"{url}/auth/request-magic-link", json={"email": email}, headers=headers
    ) as resp:
        return resp.status


async def test_link_follows_the_servers_own_url_not_the_host_header(
        server: LocalServer) -> None:
    """With no public URL (loopback), the link is built from the listening address."""
    assert await request_link(server.url, "victim@example.com", FORGED) == 200

    link = await server.next_link("victim@example.com")

    assert link.url == f"{server.url}/auth/verify?token={link.token}"
    assert "attacker" not in link.url


async def test_link_follows_roomz_public_url_not_the_host_header(tmp_path: Path) -> None:
    """``roomz-server`` with ROOMZ_PUBLIC_URL mails links to that URL, whatever Host says."""
    env = {"JWT_SECRET_KEY": SECRET, "ROOMZ_PUBLIC_URL": "https://chat.example.com/"}
    async with ServerProcess(state_home=tmp_path, env=env) as proc:
        before = len(proc.lines)
        assert await request_link(proc.url, "victim@example.com", FORGED) == 200

        line = await proc.wait_for_line(r"magic link for victim@example\.com: ", after=before)

    assert re.search(r": https://chat\.example\.com/auth/verify\?token=[\w-]{43}\b",
                     line.string), line.string
    assert "attacker" not in line.string


async def test_the_page_names_the_servers_own_url_not_the_host_header(
        server: LocalServer) -> None:
    """``GET /`` tells people to run ``roomz-cli --server`` with the server's own URL."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(
        server.url + "/", headers=FORGED
    ) as resp:
        page = await resp.text()

    assert f"roomz-cli --server {server.url}" in page
    assert "attacker" not in page


def test_off_loopback_without_a_public_url_the_server_refuses_to_start(tmp_path: Path) -> None:
    """``--host 0.0.0.0`` with allow-list and secret but no public URL: exit 2, one line
    naming ROOMZ_PUBLIC_URL, and nothing listens."""
    env = {"ALLOWED_EMAILS": "alice@example.com", "JWT_SECRET_KEY": SECRET}

    done = run_command("--host", "0.0.0.0", "--port", "0", state_home=tmp_path, env=env)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("roomz-server: ")
    assert "ROOMZ_PUBLIC_URL" in lines[0]
    assert "listening" not in done.stderr
