"""The single-node history store itself (``SqliteHistory``) on a real file: the order, the
window and restarts, across the moves of the newest messages into the indexed table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from roomz.server.history import BATCH, SqliteHistory, Window
from roomz.server.private_sqlite import UnavailableOnError
from roomz.server.unavailable import StoreUnavailable

ALICE, BOB = "alice@example.com", "bob@example.com"
WINDOW = Window(messages=1000, seconds=3600.0)


async def opened(path: Path, window: Window = WINDOW) -> SqliteHistory:
    store = SqliteHistory(path, window)
    await store.open()
    return store


async def kept(store: SqliteHistory, count: int, start: int = 0) -> dict[str, list[str]]:
    """Alice and Bob take turns: ``count`` messages each; each user's cursors in order."""
    cursors: dict[str, list[str]] = {ALICE: [], BOB: []}
    for number in range(start, start + count):
        for email in (ALICE, BOB):
            cursors[email].append(await store.keep(email, {"id": f"{email} {number}"}))
    return cursors


def ids(messages: list[dict[str, object]]) -> list[object]:
    return [m["id"] for m in messages]


async def test_each_user_gets_their_own_messages_after_any_cursor(tmp_path: Path) -> None:
    """More than two batches: cursors in moved rows and in the newest alike."""
    store = await opened(tmp_path / "h.sqlite3")
    count = BATCH + BATCH // 2  # 2 x count messages: moved once, and some not yet
    cursors = await kept(store, count)
    for at in (0, BATCH // 2, count - 5, count - 1):
        replay = await store.after(ALICE, cursors[ALICE][at])
        assert ids(replay.messages) == [f"{ALICE} {n}" for n in range(at + 1, count)]
        assert replay.complete and replay.head == cursors[ALICE][-1]
    assert ids(await store.latest(BOB, 3)) == [f"{BOB} {n}" for n in range(count - 3, count)]
    assert (await store.after(BOB, None)).head == cursors[BOB][-1]
    await store.close()


async def test_a_restart_keeps_every_message_and_never_reuses_a_cursor(tmp_path: Path) -> None:
    store = await opened(tmp_path / "h.sqlite3")
    before = await kept(store, BATCH // 2 + 10)  # some moved, some still the newest
    await store.close()
    store = await opened(tmp_path / "h.sqlite3")
    after = await kept(store, 5, start=BATCH // 2 + 10)
    assert not set(before[ALICE]) & set(after[ALICE])
    replay = await store.after(ALICE, before[ALICE][0])
    assert ids(replay.messages) == [f"{ALICE} {n}" for n in range(1, BATCH // 2 + 15)]
    assert [m["cursor"] for m in replay.messages] == before[ALICE][1:] + after[ALICE]
    await store.close()


async def test_past_the_count_the_oldest_go_and_a_replay_says_so(tmp_path: Path) -> None:
    store = await opened(tmp_path / "h.sqlite3", Window(messages=10, seconds=3600.0))
    cursors = await kept(store, BATCH + 20)
    assert ids(await store.latest(ALICE, 10)) == [f"{ALICE} {n}" for n in range(BATCH + 10,
                                                                                 BATCH + 20)]
    replay = await store.after(ALICE, cursors[ALICE][0])
    assert len(replay.messages) == 10 and not replay.complete
    await store.close()


async def test_past_the_age_nothing_is_kept(tmp_path: Path) -> None:
    """Housekeeping forgets what is older than the window, moved or not."""
    store = await opened(tmp_path / "h.sqlite3")
    cursors = await kept(store, BATCH // 2 + 10)
    await store.close()
    store = await opened(tmp_path / "h.sqlite3", Window(messages=1000, seconds=0.0))
    await store.trim()
    assert await store.latest(ALICE, 1000) == []
    replay = await store.after(ALICE, cursors[ALICE][0])
    assert replay.messages == [] and not replay.complete
    new = await store.keep(ALICE, {"id": "new"})
    assert new not in cursors[ALICE]
    await store.close()


async def test_an_sqlite_error_is_the_store_being_unavailable(tmp_path: Path) -> None:
    """What the chat answers "try again shortly" to, naming the file; other errors pass."""
    guard = UnavailableOnError(f"message history in {tmp_path}")
    unavailable = pytest.raises(StoreUnavailable,
                                match=f"message history in {tmp_path}: disk I/O error")
    with unavailable, guard:
        raise sqlite3.OperationalError("disk I/O error")
    with pytest.raises(ValueError), guard:
        raise ValueError("a bug, not the store")
