"""Fixtures for fault tests: servers to kill and restart, Redis nodes, clients, a proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.nodes.conftest import node, redis  # noqa: F401 - fixtures used by the node tests

from .helpers import FAST, TIMEOUT
from .proxy import TcpProxy


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., AsyncClient]]:
    """``make_client(url, session, **options)``: a client signed in with ``session``.

    The session is put in a session cache for ``url``, as a returning user's would be;
    every client made is disconnected (bounded) when the test ends.
    """
    made: list[AsyncClient] = []
    cache = tmp_path / "sessions.json"

    def make(url: str, session: str, **options: Any) -> AsyncClient:
        SessionCache(cache).save(url, session)
        client = AsyncClient(url, session_cache_file=cache, **{**FAST, **options})
        made.append(client)
        return client

    yield make
    for client in made:
        # A test that failed half-way may leave a client that cannot close cleanly.
        with contextlib.suppress(asyncio.TimeoutError, OSError):
            await asyncio.wait_for(client.disconnect(), TIMEOUT)


@pytest.fixture
async def proxy_factory() -> AsyncIterator[Callable[[list[int]], Any]]:
    """``await proxy_factory([port, ...])``: a started :class:`TcpProxy`, closed at the end."""
    proxies: list[TcpProxy] = []

    async def make(ports: list[int]) -> TcpProxy:
        proxy = TcpProxy(ports)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        await asyncio.wait_for(proxy.close(), TIMEOUT)
