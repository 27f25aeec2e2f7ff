"""Opening the server's own SQLite files: private (0600 in 0700), never through a link."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from types import TracebackType

from .settings import SettingsError
from .unavailable import StoreUnavailable

BUSY_SECONDS = 1.0  # how long a write waits for another connection's (or process's) write


class UnavailableOnError:
    """A context in which SQLite's errors (a full disk, a locked or damaged file) become
    :class:`StoreUnavailable` naming ``what``: the server answers "try again shortly" and
    keeps its connections. One per file, entered as often as needed."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if isinstance(error, sqlite3.Error):
            raise StoreUnavailable(f"{self.what}: {error}") from error


def open_database(path: Path, what: str, schema: str, *,
                  exclusive: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the file that keeps ``what``, in WAL mode with ``schema``.

    ``exclusive``: this connection alone uses the file while it is open, which spares each
    transaction the locks and shared-memory index other connections would need.
    :class:`SettingsError` says why it cannot: the operator must fix the state directory.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Made 0600 before SQLite opens it, which gives its -wal and -shm files the same mode;
        # O_NOFOLLOW: a symlink planted there is refused, not followed.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None,
                             check_same_thread=False)
    except OSError as exc:
        raise SettingsError(f"cannot keep {what} in {path}: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise SettingsError(f"cannot keep {what} in {path}: {exc}") from exc
    try:
        if exclusive:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")  # readers go on while one connection writes
        db.execute("PRAGMA synchronous=NORMAL")  # no fsync per write: only a power cut loses any
        db.executescript(schema)
    except sqlite3.Error as exc:
        db.close()
        raise SettingsError(f"cannot keep {what} in {path}: {exc}") from exc
    return db
