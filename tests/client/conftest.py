"""Fixtures for client tests: clients that are always disconnected, servers in other processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.server.local import LocalServer

from .helpers import TIMEOUT

ClientFactory = Callable[..., AsyncClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Make ``AsyncClient``s that are disconnected when the test ends."""
    made: list[AsyncClient] = []

    def make(server_url: str, *args: Any, **kwargs: Any) -> AsyncClient:
        client = AsyncClient(server_url, *args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await asyncio.wait_for(client.disconnect(), TIMEOUT)


SignedIn = Callable[..., Awaitable[AsyncClient]]


@pytest.fixture
def signed_in(make_client: ClientFactory) -> SignedIn:
    """``await signed_in(server, email, **options)``: a client connected with a fresh magic link."""
    async def connect(server: LocalServer, email: str, *, url: str | None = None,
                      **options: Any) -> AsyncClient:
        link = await server.request_link(email)
        client = make_client(url or server.url, **options)
        await asyncio.wait_for(client.connect(link.token), TIMEOUT)
        return client
    return connect


