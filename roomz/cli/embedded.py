"""Embedded mode: a reference server inside the terminal's process, signed in without a token.

Its chat page works too: the terminal shows the page's address, and the sign-in links the
page asks for (the server is yours, on loopback, and has no mail to send them by).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from roomz.server.local import LocalServer
from roomz.server.mail import MagicLink
from roomz.session_cache import SessionCache


def local_email() -> str:
    """The email to sign in with: ``ROOMZ_EMAIL``, else ``<login name>@roomz.local``."""
    if os.environ.get("ROOMZ_EMAIL"):
        return os.environ["ROOMZ_EMAIL"]
    name = re.sub(r"[^a-zA-Z0-9._%+-]", "", getpass.getuser()) or "me"
    return f"{name}@roomz.local"


@contextlib.asynccontextmanager
async def embedded_server(email: str) -> AsyncIterator[tuple[str, Path]]:
    """A server on a free loopback port, and a session file in which ``email`` is signed in.

    Yields the server's URL and that file. The session lives for this run only: the port,
    and so the server URL, changes every run, and the server's secret is a fresh one.
    Says where the chat page is on stderr, and each sign-in link asked for afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="roomz-embedded-") as scratch:
        async with LocalServer(state_dir=Path(scratch) / "state") as server:
            session_file = Path(scratch) / "session.json"
            SessionCache(session_file).save(server.url, await server.sign_in(email))
            server.on_magic_link = show_link  # the terminal's own link above is not shown
            print(f"Chat page: {server.url}/ (open it in a browser, sign in with {email}; "
                  "the link shows here)", file=sys.stderr, flush=True)
            yield server.url, session_file


def show_link(link: MagicLink) -> None:
    """Show a sign-in link that the chat page asked for, which no mail carries."""
    print(f"Sign-in link for {link.email}: {link.url}", file=sys.stderr, flush=True)
