"""The published Roomz 0.4.0 server, run under uvicorn from its own venv, for interop tests.

``async with PublishedServer(python, allowed_emails=[...]) as server:`` starts it on a free
loopback port, returns once it answers HTTP, and keeps its stderr in ``server.lines``;
its console mailer logs each magic link there (``MAGIC LINK for EMAIL`` then
``URL: http://localhost:PORT/auth/verify?token=TOKEN``), found with ``next_link``.
``kill()`` and ``start()`` again restart it on the same port with the same JWT secret.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp

from roomz.server.local import request_magic_link
from tests.server.proc import StderrLines, free_port

RUN = (
    "import logging, sys, uvicorn; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
    'uvicorn.run("roomz.server:asgi_app", host="127.0.0.1", port=int(sys.argv[1]), '
    'log_level="warning")'
)
LINK_FOR = re.compile(r"MAGIC LINK for (?P<email>\S+)")
LINK_URL = re.compile(r"URL: (?P<url>https?://\S+/auth/verify\?token=(?P<token>[\w-]+))")
#: Settings the published server reads; only the ones a test passes reach it.
SETTING_VARS = re.compile(
    r"^(JWT_\w+|ALLOWED_EMAILS|MAGIC_LINK_\w+|EMAIL_\w+|SMTP_\w+|ROOMZ_\w+|BASEWEB_\w+)$"
)


@dataclass(frozen=True)
class PublishedLink:
    """A magic link as the published server's console mailer logged it."""

    email: str
    url: str
    token: str


class PublishedServer:
    """``roomz==0.4.0``'s ASGI app under uvicorn in a subprocess on ``127.0.0.1``."""

    def __init__(self, python: Path, *, allowed_emails: Iterable[str]) -> None:
        self.python = python
        self.port = free_port()
        self.secret = secrets.token_urlsafe(30)[:40]
        self.allowed_emails = ",".join(allowed_emails)
        self._scratch = tempfile.TemporaryDirectory(prefix="roomz-published-server-")
        self.workdir = self._scratch.name
        self.log = StderrLines("the published server")
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def localhost_url(self) -> str:
        """``http://localhost:PORT``, the form the published client needs."""
        return f"http://localhost:{self.port}"

    @property
    def lines(self) -> list[str]:
        """Every stderr line so far."""
        return self.log.lines

    @property
    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log.text

    @property
    def links(self) -> list[PublishedLink]:
        """Every magic link logged so far: a ``MAGIC LINK for`` line, then its ``URL:``."""
        links: list[PublishedLink] = []
        email = None
        for line in self.lines:
            if (found := LINK_FOR.search(line)) is not None:
                email = found["email"]
            elif (url := LINK_URL.search(line)) is not None and email:
                links.append(PublishedLink(email, url["url"], url["token"]))
                email = None
        return links

    def _env(self) -> dict[str, str]:
        # Not PYTHONPATH: a checkout's roomz on it would hide the published one.
        env = {k: v for k, v in os.environ.items()
               if not SETTING_VARS.match(k) and k != "PYTHONPATH"}
        env.update(JWT_SECRET_KEY=self.secret, ALLOWED_EMAILS=self.allowed_emails,
                   HOME=self.workdir)
        return env

    async def start(self, timeout: float = 20.0) -> None:
        """Start the server and return once it answers HTTP on its port."""
        self._process = await asyncio.create_subprocess_exec(
            str(self.python), "-c", RUN, str(self.port), env=self._env(), cwd=self.workdir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.log.follow(self._process.stderr)  # after a restart, the lines go on
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                try:
                    async with http.get(f"{self.url}/") as resp:
                        if resp.status < 500:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if self._process.returncode is not None or time.monotonic() > deadline:
                    await self.kill()
                    raise AssertionError(f"the published server did not start:\n{self.stderr}")
                await asyncio.sleep(0.05)

    async def next_link(self, email: str, *, after: int = 0,
                        timeout: float = 5.0) -> PublishedLink:
        """The first link logged for ``email`` among ``links[after:]``, waiting for it."""
        return await self.log.wait_until(
            lambda: next((link for link in self.links[after:] if link.email == email), None),
            f"a magic link for {email}", timeout)

    async def request_link(self, email: str) -> PublishedLink:
        """Ask for a magic link over HTTP, as a client would, and read it from the log."""
        before = len(self.links)
        await request_magic_link(self.url, email)
        return await self.next_link(email, after=before)

    async def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL by default) and wait until the process and its log have ended."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(sig)
            await asyncio.wait_for(self._process.wait(), 10)
        with contextlib.suppress(asyncio.TimeoutError):  # wait_for cancels the reader
            await self.log.ended(5)

    async def __aenter__(self) -> PublishedServer:
        try:
            await self.start()
        except BaseException:
            self._scratch.cleanup()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self.kill()
        finally:
            self._scratch.cleanup()
