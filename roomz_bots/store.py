"""Each plugin's persistent key-value store: JSON values in SQLite, in the user's data directory."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs


def default_data_dir() -> Path:
    """Where bots keep their stores (``~/.local/share/roomz/bots`` on Linux)."""
    return Path(platformdirs.user_data_dir("roomz")) / "bots"


class Store:
    """A small dict-like store that survives restarts; values are anything JSON can hold.

    ``store["key"] = value``, ``store.get("key", default)``, ``del store["key"]``,
    ``store.items(prefix="reminder:")``, ``store.rename(key, new_key)``. Every write is
    committed at once: a bot killed right after it keeps it (only a power cut may lose the
    last writes, as with the server's files). Keys are text, and so are the keys of dicts
    inside values: JSON would turn ``{5: "x"}`` into ``{"5": "x"}``, and ``counts.get(5)``
    would find nothing after a restart, so such a write raises :class:`TypeError` instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: nothing to lose
        # As the server's files: a write survives the process's death, and costs no fsync
        # (the default journal took about 0.6 ms a write, four writes to a bot's reply).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __getitem__(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return json.loads(row[0])

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"store keys must be text, not {key!r} ({type(key).__name__})")
        self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, _encoded(key, value)))

    def __delitem__(self, key: str) -> None:
        if self._db.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._db.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove ``key`` and return its value, or ``default`` when it is absent."""
        value = self.get(key, default)
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        return value

    def rename(self, key: str, new_key: str) -> None:
        """Move the value under ``key`` to ``new_key`` (replacing what was there) in one
        step: a crash leaves it under one of the two, never under none."""
        if not isinstance(new_key, str):
            raise TypeError(f"store keys must be text, not {new_key!r} ({type(new_key).__name__})")
        if self._db.execute("UPDATE OR REPLACE kv SET key = ? WHERE key = ?",
                            (new_key, key)).rowcount == 0:
            raise KeyError(key)

    def items(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        # Not LIKE: it ignores the case of ASCII letters.
        rows = self._db.execute("SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? "
                                "ORDER BY key", (len(prefix), prefix)).fetchall()
        for key, value in rows:
            yield key, json.loads(value)

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        self._db.close()


def _encoded(key: str, value: Any) -> str:
    """``value`` as JSON, or a :class:`TypeError` naming ``key`` and what JSON would not give
    back as it was written."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:  # a set, an object, a circular list
        raise TypeError(f"store[{key!r}]: {exc}; values are what JSON holds: dict, list, "
                        f"str, int, float, bool and None") from None
    for bad in _non_text_keys(value):  # the first is enough to say why
        raise TypeError(f"store[{key!r}]: dict keys must be text, not {bad!r} "
                        f"({type(bad).__name__}): JSON keeps keys as text, so {bad!r} would "
                        f"not be found after a restart")
    return text


def _non_text_keys(value: Any) -> Iterator[object]:
    """The dict keys inside ``value`` that are not text (None and numbers included)."""
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            if not isinstance(inner_key, str):
                yield inner_key
            yield from _non_text_keys(inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _non_text_keys(inner)
