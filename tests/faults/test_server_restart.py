"""The server process is SIGKILLed and restarted while a user's clients and a bot are sending."""

from __future__ import annotations

import asyncio
import html
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roomz import AsyncClient
from roomz_bots import Bot, load_plugin
from roomz_bots.flood import TokenBucket
from tests.server.proc import RestartableServer

from .helpers import (
    FAST,
    TIMEOUT,
    SendLog,
    Watch,
    checked_deliveries,
    keep_sending,
    undelivered,
    wait_until,
)

RECONNECT_MARGIN = 1.0  # the handshake and sign-in of the attempt that succeeds
SEND_TIMEOUT = 15.0  # a bot's send may wait for its reconnect; still bounded


@pytest.mark.timeout(60)
async def test_sigkill_and_restart_while_clients_and_a_bot_are_sending(
        restartable: RestartableServer, make_client: Callable[..., AsyncClient],
        tmp_path: Path) -> None:
    """Everyone reconnects within backoff, the bot answers again, no duplicate, no silent loss."""
    proc = await restartable.start()
    session = await proc.sign_in("alice@example.com")
    clients = [make_client(restartable.url, session) for _ in range(3)]
    bot = Bot("echo-bot", make_client(restartable.url, session), [load_plugin("echo")],
              display_name="EchoBot", flood=TokenBucket(burst=1000, per_second=1000.0),
              data_dir=tmp_path / "bots")
    watches = [Watch(f"client{i}", c) for i, c in enumerate(clients)]
    everyone = [*watches, Watch("bot", bot.client)]
    for client in clients:
        await asyncio.wait_for(client.connect(), TIMEOUT)
    await asyncio.wait_for(bot.start(), TIMEOUT)
    names = [w.name for w in everyone]
    log = SendLog()
    stop = asyncio.Event()
    try:
        senders = [asyncio.create_task(keep_sending(log, w.name, c.send, stop,
                                                    timeout=SEND_TIMEOUT))
                   for w, c in zip(watches, clients, strict=True)]
        senders.append(asyncio.create_task(
            keep_sending(log, "bot", bot.send, stop, pace=0.05, timeout=SEND_TIMEOUT)))
        try:
            await wait_until(lambda: all(len(log.of("ok", n)) >= 3 for n in names),
                             what="every sender's first acknowledged messages")

            await proc.stop(signal.SIGKILL)
            killed = time.monotonic()
            await wait_until(lambda: all(w.count("down") == 1 for w in everyone),
                             what="every connection to notice the kill")
            # Down for a while: each client's sends are refused, and its backoff grows.
            await wait_until(lambda: all(
                len(log.of("raised", w.name, after=killed)) >= 20
                for w in watches), what="sends refused while the server is down")
            await restartable.start()
            healthy = time.monotonic()
            await wait_until(lambda: all(w.count("up") == 2 for w in everyone), 15,
                             "every connection to come back")
            for watch in everyone:
                down, back = watch.times("down")[0], watch.times("up")[1]
                # The attempt after the restart comes at most one backoff step (about the time
                # already waited) later.
                allowed = (healthy - down) + FAST["reconnect_delay"] + RECONNECT_MARGIN
                assert back - healthy <= allowed, (watch.name, back - healthy, allowed)
            await wait_until(lambda: all(
                len(log.of("ok", n, after=healthy)) >= 3 for n in names),
                10, "acknowledged sends after the restart")
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*senders), SEND_TIMEOUT + 5)

        ask = await asyncio.wait_for(clients[0].send("!echo x <after> the restart"), TIMEOUT)
        assert ask["status"] == "ok", ask
        await wait_until(lambda: any(
            m.get("connection_id") == bot.connection_id
            and html.unescape(m["content"]) == "x <after> the restart"
            for m in watches[0].messages), what="the bot's echo after the restart")

        await wait_until(lambda: not undelivered(log, everyone), TIMEOUT,
                         "every acknowledged message at every connection that was up")
        assert checked_deliveries(log, everyone) >= 50
        for watch in everyone:
            assert watch.duplicates() == {}, (watch.name, watch.duplicates())
        assert log.unreported() == [], log.unreported()
        failures = log.of("error") + log.of("raised")
        assert len(log.sends) == len(log.of("ok")) + len(failures)
        assert failures, "the kill should have failed some sends, and told their callers"
        assert {s.code for s in log.of("error")} <= {408}, log.of("error")
    finally:
        await asyncio.wait_for(bot.stop(), TIMEOUT * 2)
