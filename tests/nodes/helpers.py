"""What the node tests share: one user with a client on each of two nodes, and waiting
for what the nodes settle on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.server.proc import ServerProcess


async def a_client_on_each(one: ServerProcess, two: ServerProcess, email: str,
                           cache: Path) -> tuple[AsyncClient, AsyncClient]:
    """Clients of ``email`` on ``one`` and on ``two`` (not connected yet), sharing one
    session, kept in ``cache`` for both servers' URLs."""
    session = await one.sign_in(email)
    for server in (one, two):
        SessionCache(cache).save(server.url, session)
    return (AsyncClient(one.url, session_cache_file=cache),
            AsyncClient(two.url, session_cache_file=cache))


async def eventually(check: Callable[[], object], timeout: float = 30.0) -> None:
    """Retry an async ``check`` until it stops raising AssertionError (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await check()  # type: ignore[misc]
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
