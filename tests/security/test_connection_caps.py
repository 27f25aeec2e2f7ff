"""One user opening connection after connection: a per-user cap, counted on every node,
keeps the other users' slots free."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient, AuthenticationError
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess
from tests.waiting import wait_until

ALICE = "alice@example.com"
BOB = "bob@example.com"
TIMEOUT = 5.0
SECRET = "a-shared-secret-of-every-node-0123456789"


class Clients:
    """``AsyncClient``s on given sessions, each with its own cache file; all closed at the end."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.open: list[AsyncClient] = []
        self._names = itertools.count()

    async def connect(self, url: str, token: str) -> AsyncClient:
        """A connected client; raises AuthenticationError (with the reason) when refused."""
        cache = self.scratch / f"session-{next(self._names)}.json"
        SessionCache(cache).save(url, token)
        client = AsyncClient(url, session_cache_file=cache, reconnect=False,
                             connection_timeout=TIMEOUT)
        self.open.append(client)
        await asyncio.wait_for(client.connect(), TIMEOUT + 1)
        return client

    async def refusal(self, url: str, token: str) -> str:
        """Why the server refuses one more connection on ``token``."""
        with pytest.raises(AuthenticationError) as refused:
            await self.connect(url, token)
        return str(refused.value)

    async def close_all(self) -> None:
        for client in self.open:
            await asyncio.wait_for(client.disconnect(), TIMEOUT)


@asynccontextmanager
async def clients(scratch: Path) -> AsyncIterator[Clients]:
    made = Clients(scratch)
    try:
        yield made
    finally:
        await made.close_all()


async def test_one_user_cannot_take_every_connection_slot(tmp_path: Path) -> None:
    """With room for 6 connections and 3 per user, Alice's fourth is refused with a reason,
    and Bob still gets in."""
    async with LocalServer(max_connections=6, max_connections_per_user=3) as server, \
            clients(tmp_path) as made:
        alice, bob = await server.sign_in(ALICE), await server.sign_in(BOB)
        for _ in range(3):
            await made.connect(server.url, alice)

        reason = await made.refusal(server.url, alice)
        assert reason.endswith(f"too many connections for {ALICE}: 3 at most; close one")
        for _ in range(3):
            assert (await made.connect(server.url, bob)).connected


async def test_a_refused_connection_leaves_no_trace(tmp_path: Path) -> None:
    """The refused connection is not announced and not counted: once Alice closes one, the
    next gets in and her others hear a total of 2."""
    async with LocalServer(max_connections_per_user=2) as server, clients(tmp_path) as made:
        token = await server.sign_in(ALICE)
        first = await made.connect(server.url, token)
        joined: list[dict[str, Any]] = []
        first.on("user_joined", joined.append)
        second = await made.connect(server.url, token)
        await wait_until(lambda: len(joined) == 1, TIMEOUT, "user_joined of the second")

        await made.refusal(server.url, token)
        await second.disconnect()
        await made.connect(server.url, token)

        await wait_until(lambda: len(joined) == 2, TIMEOUT, "user_joined of the third")
        assert [event["total_connections"] for event in joined] == [2, 2]


async def test_the_cap_counts_connections_on_every_node(tmp_path: Path) -> None:
    """Two nodes, 2 connections per user: Alice's third is refused on either node, Bob is
    not, and once Alice closes one she may open one on the other node."""
    async with RedisProcess() as redis, clients(tmp_path) as made:
        def node() -> ServerProcess:
            return ServerProcess("--redis-url", redis.url, "--max-connections-per-user", "2",
                                 state_home=tmp_path, env={"JWT_SECRET_KEY": SECRET})

        async with node() as one, node() as two:
            alice, bob = await one.sign_in(ALICE), await one.sign_in(BOB)
            await made.connect(one.url, alice)
            on_two = await made.connect(two.url, alice)

            for server in (one, two):
                reason = await made.refusal(server.url, alice)
                assert reason.endswith(f"too many connections for {ALICE}: 2 at most; close one")
            assert (await made.connect(two.url, bob)).connected

            await on_two.disconnect()
            assert (await made.connect(one.url, alice)).connected
