"""A node killed outright: the user's connections on the other nodes hear ``user_left`` for
each connection that died with it, once, as if each had closed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess
from tests.waiting import wait_until

ALICE = "alice@example.com"
TIMEOUT = 5.0
SECRET = "a-shared-secret-of-every-node-0123456789"
NODE_TIMEOUT = 4.0  # seconds of silence before a node is dead (the default is 15)


async def test_a_killed_nodes_connections_are_announced_once_on_the_other_nodes(
        tmp_path: Path) -> None:
    """Three nodes; Alice has one connection on each of nodes one and two, and two on node
    three, one of them named. Node three is SIGKILLed: each of her other connections gets
    one ``user_left`` per connection it had, with its user object and the count left."""
    async with RedisProcess() as redis:
        def node() -> ServerProcess:
            return ServerProcess("--redis-url", redis.url, state_home=tmp_path,
                                 env={"JWT_SECRET_KEY": SECRET,
                                      "ROOMZ_NODE_TIMEOUT": str(NODE_TIMEOUT)})

        shared = aioredis.from_url(redis.url, decode_responses=True)
        async with node() as one, node() as two, node() as three:
            token = await one.sign_in(ALICE)
            cache = tmp_path / "session.json"
            for server in (one, two, three):
                SessionCache(cache).save(server.url, token)
            made = [AsyncClient(server.url, session_cache_file=cache, reconnect=False,
                                connection_timeout=TIMEOUT) for server in (one, two, three, three)]
            survivors, doomed = made[:2], made[2:]
            left: list[list[dict[str, Any]]] = [[], []]
            for client, heard in zip(survivors, left, strict=True):
                client.on("user_left", heard.append)
            try:
                for client in made:
                    await asyncio.wait_for(client.connect(), TIMEOUT + 1)
                assert (await doomed[1].set_display_name("Phone"))["status"] == "ok"

                alive = set(await shared.smembers("roomz:nodes"))
                assert len(alive) == 3

                await three.kill()

                await wait_until(lambda: all(len(heard) >= 2 for heard in left),
                                 NODE_TIMEOUT + 10, lambda: f"two user_left each, got {left}")
                for heard in left:
                    assert sorted(str(e["user"]["display_name"]) for e in heard) == [
                        "None", "Phone"]
                    assert {e["user"]["email"] for e in heard} == {ALICE}
                    assert [e["remaining_connections"] for e in heard] == [3, 2]
                # No node can announce them again: the node and its connections are gone
                # from Redis, taken in the same step as the announcement's user objects.
                remaining = set(await shared.smembers("roomz:nodes"))
                (dead,) = alive - remaining
                assert len(remaining) == 2
                assert not await shared.exists(f"roomz:connections:{dead}")
                assert [len(heard) for heard in left] == [2, 2]
            finally:
                for client in made:
                    await asyncio.wait_for(client.disconnect(), TIMEOUT)
                await shared.aclose()
