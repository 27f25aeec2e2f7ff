"""Open questions kept across restarts: one node's ``questions.sqlite3`` in its state directory.

A row per open question holds what answering it or timing it out needs after a restart
(:class:`OpenQuestion`), its deadline as Unix time; a row per closed question, the newest
:data:`REMEMBERED_CLOSED` of them, lets a late answer hear "closed" rather than "unknown".
Writes are rare (a question asked, answered or closed) and small: each is its own commit,
made before the change counts, so an answer accepted is an answer kept.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .private_sqlite import UnavailableOnError, open_database
from .settings import SettingsError

FILE_NAME = "questions.sqlite3"
#: Closed questions remembered, so that a late answer hears "closed" rather than "unknown".
REMEMBERED_CLOSED = 4096
SCHEMA = """
CREATE TABLE IF NOT EXISTS open_questions (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    asker TEXT NOT NULL,          -- the user object of its message, JSON
    connection_id TEXT NOT NULL,
    data TEXT NOT NULL,           -- its question_data as delivered, JSON
    answered_by TEXT NOT NULL,    -- connection ids that answered (keep_open), JSON
    deadline REAL NOT NULL        -- Unix time of its timeout
);
CREATE TABLE IF NOT EXISTS closed_questions (
    seq INTEGER PRIMARY KEY,      -- the order they closed in
    id TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    why TEXT NOT NULL
);
"""


@dataclass
class OpenQuestion:
    """A question waiting for its answer: whose, asked by which connection, its data, and
    when it times out (Unix time: a deadline that holds across restarts)."""

    id: str
    email: str
    asker: dict[str, Any]  # the ``user`` object of its message
    connection_id: str
    data: dict[str, Any]  # its ``question_data``, as delivered
    deadline: float
    answered_by: set[str] = field(default_factory=set)  # connection ids (keep_open)


class ClosedQuestion(NamedTuple):
    """A question that closed: whose, and why (``answered already``, ``it timed out``)."""

    id: str
    email: str
    why: str


class QuestionStore:
    """Open and recently closed questions in a SQLite file: WAL mode, 0600 in 0700.

    Its methods are plain, not coroutines: a question's change and its record happen in
    one turn of the event loop, so no other answer comes in between. Each raises
    :class:`~roomz.server.unavailable.StoreUnavailable` when the file cannot be written
    (full disk, locked, damaged), having changed nothing.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME  # nothing is opened until open()
        self._guard = UnavailableOnError(f"open questions in {self.path}")
        self._connection: sqlite3.Connection | None = None

    def open(self) -> tuple[list[OpenQuestion], list[ClosedQuestion]]:
        """Open the file, creating it if needed, and read what it holds: the open questions,
        and the closed ones oldest first. :class:`SettingsError` says why it cannot."""
        if self._connection is None:
            # Exclusive, as the history: no other process can take the write lock and
            # keep the event loop waiting for it.
            self._connection = open_database(self.path, "open questions", SCHEMA,
                                             exclusive=True)
        try:
            opened = [OpenQuestion(question_id, email, json.loads(asker), connection_id,
                                   json.loads(data), deadline, set(json.loads(answered_by)))
                      for question_id, email, asker, connection_id, data, answered_by, deadline
                      in self._db.execute("SELECT * FROM open_questions")]
            closed = [ClosedQuestion(*row) for row in self._db.execute(
                "SELECT id, email, why FROM closed_questions ORDER BY seq DESC LIMIT ?",
                (REMEMBERED_CLOSED,))]
        except (sqlite3.Error, ValueError, TypeError) as exc:  # a file damaged, or not ours
            self.close()
            raise SettingsError(f"cannot read open questions in {self.path}: {exc}") from exc
        return opened, closed[::-1]

    def keep_open(self, question: OpenQuestion) -> None:
        """Record ``question`` as open, as it is now: asked, answered by one more connection,
        or open again."""
        db = self._db
        with self._guard, db:  # one transaction: committed, or rolled back on an error
            db.execute("BEGIN")
            db.execute("INSERT OR REPLACE INTO open_questions VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (question.id, question.email, json.dumps(question.asker),
                        question.connection_id, json.dumps(question.data),
                        json.dumps(sorted(question.answered_by)), question.deadline))
            db.execute("DELETE FROM closed_questions WHERE id = ?", (question.id,))

    def keep_closed(self, question: OpenQuestion, why: str) -> None:
        """Record that ``question`` closed, and why; forget the oldest closed beyond
        :data:`REMEMBERED_CLOSED`."""
        db = self._db
        with self._guard, db:  # one transaction: committed, or rolled back on an error
            db.execute("BEGIN")
            db.execute("DELETE FROM open_questions WHERE id = ?", (question.id,))
            db.execute("INSERT OR REPLACE INTO closed_questions (id, email, why) "
                       "VALUES (?, ?, ?)", (question.id, question.email, why))
            db.execute("DELETE FROM closed_questions WHERE seq <= (SELECT seq FROM "
                       "closed_questions ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                       (REMEMBERED_CLOSED,))

    def forget(self, question_id: str) -> None:
        """Forget an open question as if it had never been asked."""
        with self._guard:
            self._db.execute("DELETE FROM open_questions WHERE id = ?", (question_id,))

    def close(self) -> None:
        """Close the file, if it is open (what it holds stays for the next start)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"the open questions in {self.path} are not open")
        return self._connection
