"""The bot's outbox: the messages it is sending with a key (``send_once``), kept in its
store while each is being sent, so that one whose send dies with the process (SIGKILL, a
reboot) or is cut short by a stop is sent again by the next run.

A command's place in the history is saved before its answer goes out: a restart never
answers a command twice, and so, without the outbox, a reply still in flight as the
runner died was lost. Each message is noted, with its key, before it first goes out, and
forgotten when its send ends: the server took it (``ok``, or ``duplicate``) or refused
it, or the send gave up and said so to its caller. The next run, connected to the same
server, sends what is left again with the same keys: the server says each once, whether
or not the first send had reached it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .store import Store


@dataclass(frozen=True)
class Pending:
    """A message noted in the outbox: sent with ``key``, not yet answered by the server."""

    #: Where the store keeps it (the notes sort oldest first).
    note: str
    #: The message's ``send_once`` key.
    key: str
    #: Its text, and the other fields it went out with (``content_type``, ``subject``).
    text: str
    fields: dict[str, Any]
    #: When it was first sent (seconds since the epoch).
    at: float


class Outbox:
    """The messages a bot is sending with a key to ``server_url``, in its store."""

    def __init__(self, store: Store, server_url: str) -> None:
        self._store = store
        self._prefix = f"outbox {server_url} "  # keys are said once by that server alone
        self._server_url = server_url
        self._notes: dict[str, str] = {}  # this run's keys, by the note each is under
        #: Keys a send of this run is sending now: nobody else sends them meanwhile.
        self.sending: set[str] = set()

    def record(self, key: str, text: str, fields: dict[str, Any], now: float) -> None:
        """Note the message ``text`` (with ``fields``) as it first goes out with ``key``:
        one write to the store."""
        note = f"{self._prefix}{time.time_ns():020d} {key}"
        self._store[note] = {"key": key, "text": text, "fields": fields, "at": now,
                             "server_url": self._server_url}
        self._notes[key] = note
        self.sending.add(key)

    def done(self, key: str) -> None:
        """The send of ``key`` ended (answered, or given up and said so): forget it."""
        self.sending.discard(key)
        note = self._notes.pop(key, None)
        if note is not None:
            self._store.pop(note)

    def left(self, key: str) -> None:
        """The send of ``key`` was cut short by the bot's stop: its note stays, for the next
        run to send it again."""
        self.sending.discard(key)

    def pending(self) -> Iterator[Pending]:
        """The messages noted and not being sent now, oldest first."""
        for note, value in self._store.items(self._prefix):
            if not isinstance(value, dict) or value.get("key") in self.sending:
                continue
            pending = Pending(note, str(value.get("key")), str(value.get("text", "")),
                              dict(value.get("fields") or {}), float(value.get("at", 0.0)))
            yield pending

    def take(self, pending: Pending) -> None:
        """A send of this run takes over ``pending``: :meth:`done` or :meth:`left` follows."""
        self._notes[pending.key] = pending.note
        self.sending.add(pending.key)

    def drop(self, pending: Pending) -> None:
        """Forget ``pending`` without sending it (too old, or the server lost send_once)."""
        self._store.pop(pending.note)
