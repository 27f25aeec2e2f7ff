"""Our terminal against the published Roomz 0.4.0 server, which has no sign-in by code."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import open_terminal, text_of

from .published_server import PublishedServer

EMAIL = "alice@example.com"


async def test_login_says_only_the_token_way_and_the_token_signs_in(
        published_python: Path, tmp_path: Path) -> None:
    """/login on the published server: the link is sent, and the terminal asks only for the
    token (no code, no waiting: that server cannot sign a terminal in from a browser);
    /token then connects, and a long message goes in parts that arrive whole there too."""
    async with PublishedServer(published_python, allowed_emails=[EMAIL]) as server, \
            open_terminal(server.url, tmp_path) as term:
        line = await term.command(f"/login {EMAIL}", "Sign-in link sent")
        assert text_of(line)[9:] == (f"Sign-in link sent to {EMAIL}. Paste the token from the "
                                     "mail here: /token TOKEN")
        assert "waiting for sign-in" not in term.toolbar()
        link = await server.next_link(EMAIL)
        await term.command(f"/token {link.token}", f"Connected to .* as {EMAIL}")
        await term.command("&" * 1200, "Sent in")  # cut to 200 there as one message

        def ampersands_back() -> int:
            return sum(t.count("&") for t in term.texts if f"{EMAIL}: &" in t)

        await term.until(lambda: ampersands_back() == 1200, "every & back from the server")
