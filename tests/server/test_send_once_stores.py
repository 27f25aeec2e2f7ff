"""``keep_once`` of both history stores: a key kept with its message, looked for in the
same step, remembered for the window's age, and a Redis script run again by redis-py
after a lost reply not taken for a send again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from roomz.server import redis_state
from roomz.server.history import SqliteHistory, Window
from roomz.server.redis_history import RedisHistory
from tests.faults.proxy import LostReplies

from .test_redis_questions import on_redis

ALICE, BOB = "alice@example.com", "bob@example.com"
WINDOW = Window(messages=1000, seconds=3600.0)


def message(number: int) -> dict[str, Any]:
    """A ``message`` event's data, as the chat makes it."""
    return {"id": f"id-{number}", "timestamp": f"2026-12-02T10:00:0{number}+00:00",
            "content": f"message {number}"}


async def check_said_once(store: SqliteHistory | RedisHistory) -> None:
    """What both stores do: the first send keeps, the second is the first's, per user."""
    first = await store.keep_once(ALICE, "k", message(1))
    assert first.first is None
    again = await store.keep_once(ALICE, "k", message(2))
    assert again.first == {"id": "id-1", "timestamp": message(1)["timestamp"],
                           "cursor": first.cursor}
    assert (await store.keep_once(BOB, "k", message(3))).first is None  # keys are per user
    assert (await store.keep_once(ALICE, "other", message(4))).first is None
    assert [m["id"] for m in await store.latest(ALICE, 10)] == ["id-1", "id-4"]
    assert [m["id"] for m in await store.latest(BOB, 10)] == ["id-3"]


async def test_sqlite_keeps_a_key_once(tmp_path: Path) -> None:
    store = SqliteHistory(tmp_path / "h.sqlite3", WINDOW)
    await store.open()
    await check_said_once(store)
    await store.close()


async def test_sqlite_forgets_a_key_past_the_windows_age(tmp_path: Path) -> None:
    """Older than the window, the key is forgotten with its message: sent again, kept."""
    store = SqliteHistory(tmp_path / "h.sqlite3", Window(messages=1000, seconds=0.2))
    await store.open()
    assert (await store.keep_once(ALICE, "k", message(1))).first is None
    assert (await store.keep_once(ALICE, "k", message(2))).first is not None
    await asyncio.sleep(0.3)
    await store.trim()
    assert (await store.keep_once(ALICE, "k", message(3))).first is None
    await store.close()


async def test_redis_keeps_a_key_once() -> None:
    async with on_redis() as (_, redis):
        await check_said_once(RedisHistory(redis, WINDOW))
        ttl = await redis.ttl('roomz:sent-key:["alice@example.com","k"]')
        assert 3590 < ttl <= 3600  # forgotten with the window's age, as the stream


async def test_redis_run_again_after_a_lost_reply_is_not_a_duplicate() -> None:
    """redis-py sends a command again when the connection drops before its reply: the
    script then finds the key its first run set. That is the same message, kept once,
    to be delivered: not a send again answered as a duplicate (and never delivered)."""
    async with on_redis() as (process, direct):
        proxy = LostReplies(process.port)
        async with proxy as port:
            redis = redis_state.connect(f"redis://127.0.0.1:{port}/0")
            try:
                store = RedisHistory(redis, WINDOW)
                await store.keep_once(ALICE, "seen", message(1))  # Redis knows the script
                proxy.arm(b"id-2")
                kept = await asyncio.wait_for(store.keep_once(ALICE, "k", message(2)), 10)
                assert proxy.dropped.is_set()
                assert kept.first is None
                assert [m["id"] for m in await store.latest(ALICE, 10)] == ["id-1", "id-2"]
            finally:
                await redis.aclose()


async def test_redis_sends_of_one_key_racing_keep_one() -> None:
    """Many sends of one key at once, as from several nodes: one keeps, all agree."""
    async with on_redis() as (_, redis):
        store = RedisHistory(redis, WINDOW)
        results = await asyncio.wait_for(asyncio.gather(
            *(store.keep_once(ALICE, "k", message(n)) for n in range(1, 9))), 10)
        kept = [r for r in results if r.first is None]
        assert len(kept) == 1
        assert {r.first["cursor"] for r in results if r.first is not None} == {kept[0].cursor}
        assert len(await store.latest(ALICE, 10)) == 1


