"""Embedded mode: a reference server inside the terminal's process, signed in without a token."""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import tempfile
from pathlib import Path
from types import TracebackType

from roomz import AsyncClient
from roomz.server import MagicLink, Server, ServerSettings


def local_email() -> str:
    """The email to sign in with: ``ROOMZ_EMAIL``, else ``<login name>@roomz.local``."""
    if os.environ.get("ROOMZ_EMAIL"):
        return os.environ["ROOMZ_EMAIL"]
    name = re.sub(r"[^a-zA-Z0-9._%+-]", "", getpass.getuser()) or "me"
    return f"{name}@roomz.local"


class EmbeddedServer:
    """A server on a free loopback port that hands its magic links straight to this process."""

    def __init__(self) -> None:
        self._links: asyncio.Queue[MagicLink] = asyncio.Queue()
        self.server = Server(ServerSettings(host="127.0.0.1", port=0),
                             on_magic_link=self._links.put_nowait)
        #: Sessions of this run only: the port, and so the server URL, changes every run.
        self.session_file = Path(tempfile.mkdtemp(prefix="roomz-embedded-")) / "session.json"

    @property
    def url(self) -> str:
        """Where the embedded server listens."""
        return self.server.url

    async def sign_in(self, client: AsyncClient, email: str, timeout: float = 10.0) -> None:
        """Request a link for ``email`` and connect ``client`` with it, no copying needed."""
        await client.login(email)
        link = await asyncio.wait_for(self._links.get(), timeout)
        await client.connect(link.token)

    async def __aenter__(self) -> EmbeddedServer:
        await self.server.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.server.stop()
        self.session_file.unlink(missing_ok=True)
        self.session_file.parent.rmdir()
