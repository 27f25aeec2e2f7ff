"""Each user's recent messages, kept so that a connection that comes back misses none.

A :class:`HistoryStore` keeps every accepted message of a user, in the order they were
accepted, and answers "what came after this cursor" and "the last N". The window is
bounded by count and by age (:class:`Window`). One node keeps the messages in
``history.sqlite3`` in its state directory (:class:`SqliteHistory`); several nodes keep
them in Redis streams (:class:`~roomz.server.redis_history.RedisHistory`).

A message may come with a key its sender chose (docs/protocol.md 3.5, ``send_once``):
:meth:`HistoryStore.keep_once` keeps it only if no message of the user's kept within the
window's age had that key, checking and keeping in one step, so that a message sent again
after a dropped link is said once.

A cursor names one kept message, or the start of a user's history (where a client stands
that joined before the user's first message). It is opaque to clients: ``EPOCH.SEQ``
here (``EPOCH.0``: the start), a stream entry id in Redis (``0-0``). A cursor the store
does not hold (kept past the window, from another store, or made up) is answered with the
whole window, marked incomplete.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import wire_json
from .private_sqlite import UnavailableOnError, open_database

log = logging.getLogger("roomz.server")

FILE_NAME = "history.sqlite3"
#: Trim a user's messages beyond the window once this share of it has piled up past it.
TRIM_SHARE = 0.1
#: The newest messages move into the indexed table in batches of this many.
BATCH = 256
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    kept_at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_user ON messages (email, seq);
-- The newest messages, not indexed yet, so that keeping one writes a single page.
CREATE TABLE IF NOT EXISTS newest (
    seq INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    kept_at REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE TEMP VIEW IF NOT EXISTS kept AS SELECT * FROM messages UNION ALL SELECT * FROM newest;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The keys of the messages sent with one (send once), and what their first send was answered.
CREATE TABLE IF NOT EXISTS sent_keys (
    email TEXT NOT NULL,
    key TEXT NOT NULL,
    kept_at REAL NOT NULL,
    first TEXT NOT NULL,
    PRIMARY KEY (email, key)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Window:
    """How much of each user's history is kept: the last ``messages``, none older than
    ``seconds``."""

    messages: int
    seconds: float

    def oldest(self, now: float | None = None) -> float:
        """The Unix time before which nothing is kept."""
        return (time.time() if now is None else now) - self.seconds


@dataclass
class Replay:
    """What a connection missed: messages in order (each with its ``cursor``), whether that
    is all of them, and the cursor it stands at afterwards (None: nothing kept yet)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    head: str | None = None


@dataclass(frozen=True)
class KeptOnce:
    """What :meth:`HistoryStore.keep_once` did: kept the message (``first`` None), or found
    the key already used and kept nothing; ``first`` then holds the first message's
    ``id``, ``timestamp`` and ``cursor``."""

    cursor: str
    first: dict[str, Any] | None = None


def first_of(message: dict[str, Any], cursor: str) -> dict[str, Any]:
    """What is remembered of a message kept with a key, to answer a send again of it."""
    return {"id": message["id"], "timestamp": message["timestamp"], "cursor": cursor}


class HistoryStore(Protocol):
    """Each user's recent messages; every method raises :class:`StoreUnavailable` when the
    store cannot answer."""

    window: Window
    #: True when keeping a message also delivers it to its user's channel, on every node
    #: (several nodes: Redis publishes it as it keeps it, so that they deliver each user's
    #: messages in the order kept); else the server emits it once kept.
    publishes: bool

    async def open(self) -> None: ...

    async def keep(self, email: str, message: dict[str, Any]) -> str:
        """Keep ``message`` (a ``message`` event's data) for ``email``; its cursor, once
        the message will be replayed whatever happens to this process."""

    async def keep_once(self, email: str, key: str, message: dict[str, Any]) -> KeptOnce:
        """Keep ``message`` as :meth:`keep` does unless a message of ``email``'s kept within
        the window's age had ``key``; checked and kept in one step."""

    async def after(self, email: str, cursor: str | None) -> Replay:
        """The messages after ``cursor`` (None: none, only where the history ends)."""

    async def latest(self, email: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` messages in the window, oldest first."""

    def order(self, cursor: str) -> tuple[int, ...] | None:
        """A key that sorts cursors in the order their messages were kept; None if malformed."""

    async def close(self) -> None: ...


class SqliteHistory:
    """Messages in ``history.sqlite3`` in the state directory: WAL mode, 0600 in 0700.

    Each message is committed as it is kept, in the event loop, before it is shown to
    anyone (WAL with ``synchronous=NORMAL``: a write to the page cache, no fsync; a killed
    process loses nothing committed, a power cut may lose the last moments). That adds no
    turn of the event loop to the message's way: committing in groups at the end of each
    turn cost the server more CPU per message in ``benchmarks/history_load.py``, not less.

    What makes a commit cheap: one connection holding the file exclusively, and a commit
    that changes one page. A message goes first to the table ``newest``, which has no
    index, and moves into ``messages``, indexed by user, with the next :data:`BATCH`
    (a commit touching both the table and its index costs half as much again). Reads
    look at both through the view ``kept``. Sequence numbers come from this object, in
    order; they are not reused while any row is kept, and a file found empty gets a new
    epoch, so that no old cursor names a new row.
    """

    def __init__(self, path: Path, window: Window) -> None:
        self.path = path
        self._guard = UnavailableOnError(f"message history in {path}")
        self.window = window
        self.publishes = False  # one node: the server emits what it kept
        self._connection: sqlite3.Connection | None = None
        self._epoch = ""
        self._last_seq = 0  # of the newest message kept
        self._unmoved = 0  # messages in ``newest``
        self._piled: dict[str, int] = {}  # messages kept per user since their last trim
        self._trim_every = max(1, int(window.messages * TRIM_SHARE))

    @classmethod
    def in_state_dir(cls, state_dir: Path, window: Window) -> SqliteHistory:
        """The history of the server whose state directory is ``state_dir`` (not open yet)."""
        return cls(state_dir / FILE_NAME, window)

    async def open(self) -> None:
        """Open the file, creating it if needed; :class:`SettingsError` says why it cannot."""
        if self._connection is not None:
            return
        self._connection = open_database(self.path, "the message history", SCHEMA,
                                         exclusive=True)
        with self._guard:
            row = self._connection.execute(
                "SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            self._epoch = row[0] if row is not None else ""
            self._renew_epoch_if_empty()
            self._last_seq = self._connection.execute(
                "SELECT coalesce(max(seq), 0) FROM kept").fetchone()[0]
            self._unmoved = self._connection.execute(
                "SELECT count(*) FROM newest").fetchone()[0]

    def _renew_epoch_if_empty(self) -> None:
        """Found empty, the file would number messages from 1 again: old cursors must not
        match them."""
        db = self._db()
        if not self._epoch or db.execute("SELECT 1 FROM kept LIMIT 1").fetchone() is None:
            self._epoch = secrets.token_hex(4)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (self._epoch,))

    async def keep(self, email: str, message: dict[str, Any]) -> str:
        """Keep ``message`` (committed before this returns); its cursor."""
        db = self._db()
        with self._guard:  # housekeeping first: a message refused is never kept
            self._housekeep(email)
            db.execute("INSERT INTO newest VALUES (?, ?, ?, ?)",
                       (self._last_seq + 1, email, time.time(), wire_json.dumps(message)))
        return self._kept(email)

    async def keep_once(self, email: str, key: str, message: dict[str, Any]) -> KeptOnce:
        """Keep ``message`` and its key in one transaction, unless the key was kept within
        the window's age. No await between look and keep: nothing else runs in between."""
        db, now = self._db(), time.time()
        with self._guard:
            row = db.execute("SELECT first FROM sent_keys WHERE email = ? AND key = ? "
                             "AND kept_at >= ?", (email, key, self.window.oldest(now))
                             ).fetchone()
            if row is not None:
                first = wire_json.loads(row[0])
                return KeptOnce(first["cursor"], first)
            self._housekeep(email)
            cursor = self._cursor(self._last_seq + 1)
            with db:  # one transaction: the message and its key, or neither
                db.execute("BEGIN")
                db.execute("INSERT INTO newest VALUES (?, ?, ?, ?)",
                           (self._last_seq + 1, email, now, wire_json.dumps(message)))
                db.execute("INSERT OR REPLACE INTO sent_keys VALUES (?, ?, ?, ?)",
                           (email, key, now, wire_json.dumps(first_of(message, cursor))))
        return KeptOnce(self._kept(email))

    def _housekeep(self, email: str) -> None:
        """Move the newest messages and trim ``email``'s when they have piled up."""
        if self._unmoved >= BATCH:
            self._move()
        if self._piled.get(email, 0) >= self._trim_every:
            self._trim(email)

    def _kept(self, email: str) -> str:
        """Count the message just kept for ``email``; its cursor."""
        self._last_seq += 1
        self._unmoved += 1
        self._piled[email] = self._piled.get(email, 0) + 1
        return self._cursor(self._last_seq)

    def _move(self) -> None:
        """Move the newest messages into the indexed table, in one transaction."""
        db = self._db()
        with db:  # one transaction: committed, or rolled back on an error
            db.execute("BEGIN")
            db.execute("INSERT INTO messages SELECT * FROM newest")
            db.execute("DELETE FROM newest")
        self._unmoved = 0

    def _trim(self, email: str) -> None:
        """Forget the user's messages beyond the window's count."""
        del self._piled[email]
        self._db().execute(
            "DELETE FROM messages WHERE email = ? AND seq <= (SELECT seq FROM kept "
            "WHERE email = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (email, email, self.window.messages))

    async def after(self, email: str, cursor: str | None) -> Replay:
        """The messages after ``cursor``, at most the window's count."""
        db = self._db()
        oldest = self.window.oldest()
        with self._guard:
            if cursor is None:
                row = db.execute("SELECT seq FROM kept WHERE email = ? ORDER BY seq DESC LIMIT 1",
                                 (email,)).fetchone()
                return Replay(head=self._cursor(row[0] if row else 0))
            seq = self._seq(cursor)
            known = seq == 0 or seq is not None and db.execute(
                "SELECT 1 FROM kept WHERE email = ? AND seq = ? AND kept_at >= ?",
                (email, seq, oldest)).fetchone() is not None
            rows = db.execute(
                "SELECT seq, message FROM kept WHERE email = ? AND seq > ? AND kept_at >= ? "
                "ORDER BY seq DESC LIMIT ?",
                (email, seq if known else -1, oldest, self.window.messages + 1)).fetchall()
        complete = known and len(rows) <= self.window.messages
        messages = self._messages(rows[:self.window.messages])
        head = messages[-1]["cursor"] if messages else (cursor if known else None)
        return Replay(messages, complete, head)

    async def latest(self, email: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` messages in the window, oldest first."""
        with self._guard:
            rows = self._db().execute(
                "SELECT seq, message FROM kept WHERE email = ? AND kept_at >= ? "
                "ORDER BY seq DESC LIMIT ?",
                (email, self.window.oldest(), min(count, self.window.messages))).fetchall()
        return self._messages(rows)

    def order(self, cursor: str) -> tuple[int, ...] | None:
        """``(seq,)`` of one of this store's cursors, else None."""
        seq = self._seq(cursor)
        return None if seq is None else (seq,)

    async def trim(self) -> None:
        """Forget messages older than the window (the count is trimmed as messages come)."""
        db, oldest = self._db(), self.window.oldest()
        with self._guard:
            removed = db.execute("DELETE FROM messages WHERE kept_at < ?", (oldest,)).rowcount
            unmoved = db.execute("DELETE FROM newest WHERE kept_at < ?", (oldest,)).rowcount
            self._unmoved -= unmoved
            removed += unmoved
            db.execute("DELETE FROM sent_keys WHERE kept_at < ?", (oldest,))
        if removed:
            log.debug("forgot %d messages older than the history window", removed)

    async def close(self) -> None:
        """Close the file."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _messages(self, newest_first: list[tuple[int, str]]) -> list[dict[str, Any]]:
        return [{**wire_json.loads(text), "cursor": self._cursor(seq)}
                for seq, text in reversed(newest_first)]

    def _cursor(self, seq: int) -> str:
        return f"{self._epoch}.{seq}"

    def _seq(self, cursor: str) -> int | None:
        """The row a cursor of this store names; None for anything else."""
        epoch, _, seq = cursor.partition(".")
        if seq == "0":  # the start of a history, under any epoch: everything is after it
            return 0
        return int(seq) if epoch == self._epoch and seq.isdigit() and len(seq) < 19 else None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"the history in {self.path} is not open")
        return self._connection
