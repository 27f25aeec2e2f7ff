"""Redis is SIGKILLed and restarted while 20 users x 5 connections on two nodes keep sending."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.load.loadrun import Connection, open_connections
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess

from .helpers import Send, SendLog, keep_sending, wait_until

USERS = 20
PER_USER = 5
PACE = 0.2  # each of the 100 connections sends five messages a second
CALL_TIMEOUT = 5.0




def name_of(index: int) -> str:
    """How the send log names connection ``index``: ``c17``."""
    return f"c{index}"


def describe(problems: list[tuple[Send, int, int]], restarted: float) -> str:
    """One paragraph on deliveries that went wrong: how many, when sent, on which node."""
    sends = {id(s): s for s, _, _ in problems}
    offsets = sorted(s.started - restarted for s in sends.values())
    same_node = sum(1 for s, i, _ in problems if i % 2 == int(s.sender[1:]) % 2)
    counts = sorted({n for _, _, n in problems})
    return (f"{len(sends)} ok-acknowledged messages were not delivered exactly once to every "
            f"connection of their user ({len(problems)} deliveries; times delivered: {counts}; "
            f"{same_node} of them on the sender's own node, {len(problems) - same_node} on the "
            f"other node); they were sent from {offsets[0]:+.2f} s to {offsets[-1]:+.2f} s "
            f"after Redis answered again")


@pytest.mark.timeout(90)
async def test_redis_restart_under_load_answers_503_then_delivers_every_acked_message(
        node: Callable[..., ServerProcess], redis: RedisProcess) -> None:
    """Outage: 503 answers, no dropped connection. After: every ok-acked message reaches every
    connection of its user, on both nodes, exactly once."""
    async with node() as one, node() as two:
        sessions = [await one.sign_in(f"load{u}@example.com") for u in range(USERS)]
        conns = await open_connections([one.url, two.url], sessions, PER_USER, timeout=30)
        names = [name_of(i) for i in range(len(conns))]
        log = SendLog()
        stop = asyncio.Event()

        def send_on(conn: Connection) -> Callable[[str], Any]:
            return lambda text: conn.sio.call("message", {"content": text},
                                              timeout=CALL_TIMEOUT)

        def user_conns(user: int) -> list[Connection]:
            return conns[user * PER_USER:(user + 1) * PER_USER]

        def everywhere(message_id: str | None, user: int) -> bool:
            return all(c.delivered[message_id or ""] >= 1 for c in user_conns(user))

        tasks = [asyncio.create_task(keep_sending(log, names[i], send_on(c), stop, pace=PACE,
                                                  timeout=CALL_TIMEOUT + 1))
                 for i, c in enumerate(conns)]
        try:
            await wait_until(lambda: all(len(log.of("ok", n)) >= 2 for n in names), 10,
                             "every connection's first acknowledged messages")
            redis.kill()
            killed = time.monotonic()
            await wait_until(lambda: all(
                len(log.of("error", n, after=killed)) >= 2 for n in names),
                10, "error answers to every connection while Redis is down")
            restarting = time.monotonic()
            await redis.start()
            restarted = time.monotonic()
            # Recovered: every connection's latest acknowledged message is at all five of
            # its user's connections, on both nodes.
            await wait_until(lambda: all(
                any(s.started > restarted and everywhere(s.message_id, c.user)
                    for s in log.of("ok", names[i])) for i, c in enumerate(conns)),
                20, "messages across nodes after Redis came back")
            recovered = time.monotonic()
            await wait_until(lambda: all(
                len(log.of("ok", n, after=recovered)) >= 2 for n in names),
                10, "sends after the recovery")
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), CALL_TIMEOUT + 5)

        try:
            def missing() -> list[tuple[Send, int, int]]:
                """(send, receiving connection, times delivered) for each one not exactly once."""
                return [(s, u * PER_USER + k, conn.delivered[s.message_id or ""])
                        for i, sender in enumerate(conns) for s in log.of("ok", names[i])
                        for u in [sender.user] for k, conn in enumerate(user_conns(u))
                        if conn.delivered[s.message_id or ""] != 1]

            with contextlib.suppress(AssertionError):  # reported in full below
                await wait_until(lambda: not missing(), 10, "every delivery")
            problems = missing()
            outage = [s for s in log.sends if killed <= s.started and s.finished <= restarting]
            assert not any(c.dropped for c in conns), "a connection dropped"
            assert log.unreported() == [], log.unreported()[:5]
            assert outage and all(s.outcome == "error" and s.code == 503
                                  and "try again" in s.detail for s in outage), \
                [s for s in outage if s.outcome != "error" or s.code != 503][:5]
            assert {s.code for s in log.of("error")} == {503}, log.of("error")[:5]
            assert problems == [], describe(problems, restarted)
        finally:
            await asyncio.gather(*(c.sio.disconnect() for c in conns), return_exceptions=True)
