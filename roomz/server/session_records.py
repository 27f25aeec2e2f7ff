"""What the server remembers of ended sessions: revoked session ids and each user's version.

A session token is a signed JWT that holds until it expires, unless the server remembers
otherwise. Logging out records the session's id until its token would have expired;
ending all of a user's sessions moves the user to a new version, which older tokens do
not carry. One node keeps these records in a small SQLite file in its state directory,
so they survive restarts; several nodes keep them in Redis
(:class:`~roomz.server.redis_state.RedisSessionRecords`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .private_sqlite import UnavailableOnError, open_database

FILE_NAME = "sessions.sqlite3"
BATCH = 500  # ids per statement: SQLite caps the parameters of one statement
SCHEMA = """
CREATE TABLE IF NOT EXISTS revoked (session_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS revoked_by_expiry ON revoked (expires_at);
CREATE TABLE IF NOT EXISTS versions (email TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Standing:
    """What the records say about some sessions and users."""

    #: Of the session ids asked about, those that were logged out.
    revoked: frozenset[str] = frozenset()
    #: The current version of each user asked about whose sessions were ever all ended.
    versions: Mapping[str, int] = field(default_factory=dict)

    def version(self, email: str) -> int:
        """The version a valid session of ``email`` must carry (1 until first ended)."""
        return self.versions.get(email, 1)


class SessionRecords(Protocol):
    """Ended sessions, kept in a SQLite file (:class:`SqliteSessionRecords`) or in Redis."""

    async def open(self) -> None: ...
    async def standing(self, session_ids: Collection[str],
                       emails: Collection[str]) -> Standing: ...
    async def revoke(self, session_id: str, expires_at: int) -> None: ...
    async def end_all(self, email: str) -> None: ...
    async def purge_expired(self) -> int: ...
    async def close(self) -> None: ...


class SqliteSessionRecords:
    """Session records in ``sessions.sqlite3`` in the state directory: WAL mode, 0600 in 0700.

    The server and ``roomz-server end-sessions`` may use the file at the same time.
    Nothing is opened until :meth:`open`; :meth:`close` closes it again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = UnavailableOnError(f"session records in {path}")
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> SqliteSessionRecords:
        """The records of the server whose state directory is ``state_dir`` (not open yet)."""
        return cls(state_dir / FILE_NAME)

    async def open(self) -> None:
        """Open the file, creating it if needed; :class:`SettingsError` says why it cannot."""
        if self._connection is None:
            self._connection = open_database(self.path, "session records", SCHEMA)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"session records in {self.path} are not open")
        return self._connection

    # Each call below is one indexed statement on a small local file, well under a
    # millisecond: cheaper to run in the event loop than to hand to a thread.

    async def standing(self, session_ids: Collection[str],
                       emails: Collection[str]) -> Standing:
        """Which of ``session_ids`` were logged out, and the versions of ``emails``."""
        revoked: set[str] = set()
        versions: dict[str, int] = {}
        with self._guard:
            for chunk in _chunks(list(session_ids)):
                revoked.update(row[0] for row in self._db.execute(
                    f"SELECT session_id FROM revoked WHERE session_id IN ({_marks(chunk)})",
                    chunk))
            for chunk in _chunks(list(emails)):
                versions.update(self._db.execute(
                    f"SELECT email, version FROM versions WHERE email IN ({_marks(chunk)})",
                    chunk))
        return Standing(frozenset(revoked), versions)

    async def revoke(self, session_id: str, expires_at: int) -> None:
        """Record that the session ``session_id`` ended, until ``expires_at`` (Unix time)."""
        with self._guard:
            self._db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)",
                             (session_id, expires_at))

    async def end_all(self, email: str) -> None:
        """Move ``email`` to a new version: every session issued so far has ended."""
        with self._guard:
            self._db.execute("INSERT INTO versions VALUES (?, 2) "
                             "ON CONFLICT (email) DO UPDATE SET version = version + 1", (email,))

    async def purge_expired(self) -> int:
        """Forget revoked sessions whose tokens have expired anyway; how many were forgotten."""
        with self._guard:
            return self._db.execute("DELETE FROM revoked WHERE expires_at <= ?",
                                    (int(time.time()),)).rowcount

    async def close(self) -> None:
        """Close the file, if it is open."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def _marks(chunk: Sequence[str]) -> str:
    return ",".join("?" * len(chunk))
