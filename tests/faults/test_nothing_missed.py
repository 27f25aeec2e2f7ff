"""Nothing missed: after every fault, each connection that comes back has every
acknowledged message exactly once, each sender's in order (the history extension).

Every message is counted: each acknowledged send is looked for at every connection, and
every message a connection's handlers saw is checked for duplicates and order.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.server.local import LocalServer
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import RestartableServer, ServerProcess

from .helpers import TIMEOUT, SendLog, Watch, keep_sending, node_on, wait_until
from .proxy import TcpProxy

SEND_TIMEOUT = 15.0


async def connected(clients: dict[str, AsyncClient]) -> list[Watch]:
    """A :class:`Watch` on each client, in order, once all are connected."""
    watches = [Watch(name, client) for name, client in clients.items()]
    for client in clients.values():
        await asyncio.wait_for(client.connect(), TIMEOUT)
    return watches


async def traffic_through(fault: Callable[[], Awaitable[None]], senders: dict[str, AsyncClient],
                          *, pace: float = 0.02) -> SendLog:
    """Every sender sends numbered messages before, during and after ``fault()``."""
    log = SendLog()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(keep_sending(log, name, client.send, stop, pace=pace,
                                              timeout=SEND_TIMEOUT))
             for name, client in senders.items()]
    try:
        await wait_until(lambda: all(len(log.of("ok", n)) >= 3 for n in senders),
                         what="every sender's first acknowledged messages")
        await fault()
        over = time.monotonic()
        await wait_until(lambda: all(len(log.of("ok", n, after=over)) >= 3 for n in senders),
                         30, "acknowledged messages after the fault")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), SEND_TIMEOUT + 5)
    return log


async def assert_nothing_missed(log: SendLog, watches: list[Watch]) -> None:
    """Every acknowledged message at every connection, once; each sender's in order."""
    acked = log.of("ok")
    assert log.unreported() == [], log.unreported()
    await wait_until(lambda: all(w.ids[s.message_id or ""] for w in watches for s in acked),
                     10, lambda: "every acknowledged message everywhere; missing: " + str(
                         [(w.name, s.sender, s.message_id) for w in watches for s in acked
                          if not w.ids[s.message_id or ""]][:10]))
    senders = {s.sender for s in acked}
    for watch in watches:
        assert watch.duplicates() == {}, (watch.name, watch.duplicates())
        contents = [m["content"] for m in watch.messages]
        for sender in senders:
            numbers = [int(c.split()[1]) for c in contents if c.startswith(f"{sender} ")]
            assert numbers == sorted(numbers), (watch.name, sender, numbers)
    assert len(acked) >= 6 * len(senders)


@pytest.mark.timeout(90)
async def test_a_node_killed_and_restarted(
        restartable: RestartableServer, make_client: Callable[..., AsyncClient]) -> None:
    """kill -9 of the only node; its SQLite history outlives it: every client that comes
    back gets what was acknowledged while it was away."""
    proc = await restartable.start()
    session = await proc.sign_in("alice@example.com")
    clients = {f"c{i}": make_client(restartable.url, session) for i in range(3)}
    watches = await connected(clients)

    async def kill_and_restart() -> None:
        await proc.stop(signal.SIGKILL)
        await wait_until(lambda: all(w.count("down") == 1 for w in watches))
        await restartable.start()
        await wait_until(lambda: all(w.count("up") == 2 for w in watches), 15)

    log = await traffic_through(kill_and_restart, clients)
    await assert_nothing_missed(log, watches)


@pytest.mark.timeout(90)
async def test_a_node_killed_and_its_clients_moving_to_the_other(
        node: Callable[..., ServerProcess], make_client: Callable[..., AsyncClient],
        proxy_factory: Callable[[list[int]], Any]) -> None:
    """Two nodes on Redis; kill -9 of one: its clients come back through the balancer on
    the other and get what they missed, the other node's clients notice nothing."""
    async with node() as one, node() as two:
        assert one.port is not None and two.port is not None
        session = await one.sign_in("carol@example.com")
        balancer: TcpProxy = await proxy_factory([two.port, one.port])
        direct = {f"direct{i}": make_client(one.url, session) for i in range(2)}
        moving = {f"moving{i}": make_client(balancer.url, session) for i in range(2)}
        watches = await connected({**direct, **moving})

        async def kill_one_node() -> None:
            await two.kill()
            await wait_until(lambda: all(w.count("up") == 2 for w in watches[2:]), 15,
                             "node 2's clients back through the balancer")

        log = await traffic_through(kill_one_node, direct)
        assert balancer.routed[2:] == [one.port, one.port]
        await assert_nothing_missed(log, watches)
        assert all(w.count("down") == 0 for w in watches[:2])


@pytest.mark.timeout(90)
async def test_a_node_on_redis_killed_and_restarted(
        node: Callable[..., ServerProcess], make_client: Callable[..., AsyncClient]) -> None:
    """Two nodes on Redis; kill -9 of one, then that node started again on its port: its
    clients come back to it and get what the other node's clients sent meanwhile."""
    async with node() as one, node() as two:
        session = await one.sign_in("frank@example.com")
        on_one = {f"one{i}": make_client(one.url, session) for i in range(2)}
        on_two = {f"two{i}": make_client(two.url, session) for i in range(2)}
        watches = await connected({**on_one, **on_two})

        async def kill_and_restart_two() -> None:
            await two.stop(signal.SIGKILL)
            await wait_until(lambda: all(w.count("down") == 1 for w in watches[2:]))
            await two.start()
            await wait_until(lambda: all(w.count("up") == 2 for w in watches[2:]), 15,
                             "node 2's clients back on it")

        log = await traffic_through(kill_and_restart_two, on_one)
        await assert_nothing_missed(log, watches)
        assert all(w.count("down") == 0 for w in watches[:2])
        missed = [w.events.named("authenticated")[-1]["history"]["missed"] for w in watches[2:]]
        assert all(n > 0 for n in missed), missed


@pytest.mark.timeout(90)
async def test_a_redis_restart(tmp_path: Path, make_client: Callable[..., AsyncClient]) -> None:
    """Redis (append-only file on) is SIGKILLed and started again while clients on two
    nodes send: sends meanwhile are refused (503), none acknowledged is missing anywhere."""
    async with RedisProcess(persistent_dir=tmp_path) as redis, \
            node_on(redis.url, tmp_path) as one, node_on(redis.url, tmp_path) as two:
        session = await one.sign_in("dave@example.com")
        clients = {f"n{i % 2}c{i}": make_client((one, two)[i % 2].url, session)
                   for i in range(4)}
        watches = await connected(clients)

        async def restart_redis() -> None:
            redis.kill()
            await asyncio.sleep(1.0)  # down for a while: sends are refused meanwhile
            await redis.start()

        log = await traffic_through(restart_redis, clients)
        assert {s.code for s in log.of("error")} <= {503}, log.of("error")
        await assert_nothing_missed(log, watches)
        for watch in watches:  # each heard the user's messages in the order kept
            cursors = [tuple(map(int, m["cursor"].split("-"))) for m in watch.messages]
            assert cursors == sorted(cursors), watch.name


@pytest.mark.parametrize("away", [1.0, 30.0], ids=["a cut link", "away for 30 s"])
@pytest.mark.timeout(120)
async def test_a_client_cut_off_for_a_while(away: float, make_client: Callable[..., AsyncClient],
                                            proxy_factory: Callable[[list[int]], Any]) -> None:
    """Its TCP link cut, and no way back for ``away`` seconds, while the others send: back,
    it has every message it missed, in order, once."""
    async with LocalServer() as server:
        session = await server.sign_in("erin@example.com")
        proxy: TcpProxy = await proxy_factory([server.port])
        senders = {f"s{i}": make_client(server.url, session) for i in range(2)}
        cut_off = make_client(proxy.url, session)
        watches = await connected({**senders, "cut": cut_off})

        async def cut() -> None:
            proxy.blackhole()  # its attempts to come back hang until the link is back
            proxy.cut()
            await wait_until(lambda: watches[-1].count("down") == 1)
            await asyncio.sleep(away)
            proxy.restore()
            await wait_until(lambda: watches[-1].count("up") == 2, 20)

        # At most 20 messages a second: 30 s away stays well within the window of 1000.
        log = await traffic_through(cut, senders, pace=0.1)
        await assert_nothing_missed(log, watches)
        back = watches[-1].events.named("authenticated")[-1]["history"]
        assert back["complete"] is True and back["missed"] >= away * 5


@pytest.mark.timeout(120)
async def test_a_slow_reader_the_server_let_go(
        make_client: Callable[..., AsyncClient], proxy_factory: Callable[[list[int]], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """A connection whose link goes silent while a flood is sent to it is let go by the
    server ("reads too slowly"): when the link is back, it comes back and has everything
    that was waiting for it, once, in order."""
    pad = "x" * 900  # large messages fill the silent link's buffers in a few seconds
    async with LocalServer(max_queued_events=10, message_rate=100_000.0, message_burst=100_000,
                           history_messages=50_000) as server:
        session = await server.sign_in("grace@example.com")
        proxy: TcpProxy = await proxy_factory([server.port])
        sender = make_client(server.url, session)
        slow = make_client(proxy.url, session)
        watches = await connected({"s": sender, "slow": slow})
        let_go = asyncio.Event()
        sender.on("user_left", lambda event: let_go.set())
        log = SendLog()

        async def flood(name: str) -> None:
            for seq in range(20_000):  # bounded; the server lets go long before
                if let_go.is_set():
                    return
                await log.send(name, functools.partial(sender.send, f"{name} {seq} {pad}"),
                               SEND_TIMEOUT)

        proxy.blackhole()
        await asyncio.wait_for(asyncio.gather(*(flood(f"f{i}") for i in range(4))), 60)
        assert let_go.is_set(), "the server never let the silent connection go"
        assert any("reads too slowly" in r.getMessage() for r in caplog.records)
        proxy.restore()
        await wait_until(lambda: watches[1].count("up") == 2, 20, "the slow reader back")
        for seq in range(3):  # and what comes after
            await log.send("after", functools.partial(sender.send, f"after {seq}"), SEND_TIMEOUT)
        await assert_nothing_missed(log, watches)
        back = watches[1].events.named("authenticated")[-1]["history"]
        assert back["complete"] is True and back["missed"] > 0, back
