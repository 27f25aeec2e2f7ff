"""Two nodes behind a load balancer, one SIGKILLed: its clients move and miss nothing, the
others notice nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from roomz import AsyncClient
from tests.server.proc import ServerProcess

from .helpers import (
    TIMEOUT,
    SendLog,
    Watch,
    checked_deliveries,
    keep_sending,
    undelivered,
    wait_until,
)
from .proxy import TcpProxy


@pytest.mark.timeout(60)
async def test_a_killed_node_s_clients_reconnect_through_the_other_and_its_clients_notice_nothing(
        node: Callable[..., ServerProcess], make_client: Callable[..., AsyncClient],
        proxy_factory: Callable[[list[int]], Any]) -> None:
    """Clients behind the balancer land on node 1; node 1's own clients miss no message."""
    async with node() as one, node() as two:
        assert one.port is not None and two.port is not None
        session = await one.sign_in("carol@example.com")
        balancer: TcpProxy = await proxy_factory([two.port, one.port])  # node 2 first, while alive
        direct = [make_client(one.url, session) for _ in range(2)]
        moving = [make_client(balancer.url, session) for _ in range(2)]
        direct_watches = [Watch(f"direct{i}", c) for i, c in enumerate(direct)]
        moving_watches = [Watch(f"moving{i}", c) for i, c in enumerate(moving)]
        everyone = [*direct_watches, *moving_watches]
        for client in [*direct, *moving]:
            await asyncio.wait_for(client.connect(), TIMEOUT)
        assert balancer.routed == [two.port, two.port]

        log = SendLog()
        stop = asyncio.Event()
        sender = asyncio.create_task(keep_sending(log, "direct0", direct[0].send, stop))
        try:
            await wait_until(lambda: len(log.of("ok")) >= 5
                             and all(w.ids[log.of("ok")[0].message_id or ""] for w in everyone),
                             what="messages from node 1 reaching node 2's clients")
            await two.kill()
            await wait_until(lambda: all(w.count("down") == 1 for w in moving_watches),
                             what="node 2's clients to notice")
            await wait_until(lambda: all(w.count("up") == 2 for w in moving_watches), 10,
                             "node 2's clients to reconnect through the balancer")
            back = max(w.times("up")[1] for w in moving_watches)
            await wait_until(lambda: len(log.of("ok", after=back)) >= 5,
                             what="node 1's messages after the failover")
        finally:
            stop.set()
            await asyncio.wait_for(sender, TIMEOUT * 3)
        assert balancer.routed[2:] == [one.port, one.port]

        reply = await asyncio.wait_for(moving[0].send("hello from a moved client"), TIMEOUT)
        assert reply["status"] == "ok", reply
        await wait_until(lambda: all(w.ids[reply["message_id"]] == 1 for w in everyone),
                         what="the moved client's message at every connection")
        # Every acknowledged message reached every connection, the moved ones included: what
        # was acknowledged while they moved came in the replay of their reconnect.
        await wait_until(lambda: not undelivered(log, direct_watches)
                         and all(w.ids[s.message_id or ""] for w in moving_watches
                                 for s in log.of("ok")), TIMEOUT,
                         "every acknowledged message at every connection")

        # Node 1's own clients: no disconnect, every send acknowledged, every message there.
        for watch, client in zip(direct_watches, direct, strict=True):
            assert [c for c, _ in watch.changes] == ["up"], (watch.name, watch.changes)
            assert client.connected
        assert log.unreported() == [] and len(log.of("ok")) == len(log.sends), \
            [s for s in log.sends if s.outcome != "ok"]
        for sent in log.of("ok"):
            assert all(w.ids[sent.message_id or ""] == 1 for w in everyone), sent
        assert checked_deliveries(log, everyone) >= 4 * 5
        for watch in everyone:
            assert watch.duplicates() == {}, (watch.name, watch.duplicates())
