"""What fault tests keep track of: each connection's ups and downs, every send's outcome.

A :class:`Watch` reads a client's recorded events (:class:`tests.events.Events`, with
monotonic times) as when it was authenticated, when its ``disconnect`` handler ran, and
every message id its handlers saw. :func:`keep_sending`
sends in a bounded loop and files each outcome in a :class:`SendLog`: acknowledged,
answered with an error, or raised :class:`roomz.ConnectionError`; anything else (a hang,
another exception) is filed too, so a test can assert it never happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomz import AsyncClient, ConnectionError
from tests.events import Events
from tests.nodes.conftest import SECRET
from tests.server.proc import ServerProcess
from tests.waiting import stays_true as stays_true
from tests.waiting import wait_until as wait_until

TIMEOUT = 5.0
#: Quick reconnects, so a test waits for a restart, not for the backoff.
FAST = {"reconnect_delay": 0.1, "max_reconnect_attempts": 30, "connection_timeout": 2.0}


class Watch:
    """What one client's handlers see (:class:`tests.events.Events`), read as ups and downs."""

    def __init__(self, name: str, client: AsyncClient) -> None:
        self.name = name
        self.client = client
        self.events = Events(client, ("authenticated", "disconnect", "message"))
        self._changes: list[tuple[str, float]] = []
        self._ids: Counter[str] = Counter()
        self._read = 0  # events already read into _changes and _ids

    def _catch_up(self) -> None:
        # Read only what is new: fault tests ask after every send of thousands.
        entries = self.events.entries
        for entry in entries[self._read:len(entries)]:
            if entry.name == "message":
                self._ids[entry.data["id"]] += 1
            else:
                self._changes.append(("up" if entry.name == "authenticated" else "down",
                                      entry.at))
        self._read = len(entries)

    @property
    def changes(self) -> list[tuple[str, float]]:
        """("up", t) when "authenticated" ran, ("down", t) when "disconnect" ran."""
        self._catch_up()
        return self._changes

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message the handlers saw, in order."""
        return self.events.named("message")

    @property
    def ids(self) -> Counter[str]:
        """How often the handlers saw each message id."""
        self._catch_up()
        return self._ids

    def count(self, change: str) -> int:
        """How often the client came ``"up"`` or went ``"down"``."""
        return sum(1 for c, _ in self.changes if c == change)

    def times(self, change: str) -> list[float]:
        """When the client came ``"up"`` or went ``"down"``."""
        return [t for c, t in self.changes if c == change]

    def connected_throughout(self, start: float, end: float) -> bool:
        """True when the client was authenticated before ``start`` and stayed so until ``end``."""
        changes = self.changes
        before = [c for c, t in changes if t <= start]
        if not before or before[-1] != "up":
            return False
        return not any(c == "down" and start < t <= end for c, t in changes)

    def duplicates(self) -> dict[str, int]:
        """Message ids a handler saw more than once, with how often."""
        return {message_id: n for message_id, n in self.ids.items() if n > 1}


@dataclass
class Send:
    """One send and what its caller got back."""

    sender: str
    started: float
    finished: float
    outcome: str  # "ok", "error" (an {"error", "code"} answer), "raised" (ConnectionError)
    message_id: str | None = None
    code: int | None = None
    detail: str = ""


@dataclass
class SendLog:
    """Every send of a test, in the order they finished."""

    sends: list[Send] = field(default_factory=list)

    def of(self, outcome: str, sender: str | None = None, *,
           after: float = float("-inf")) -> list[Send]:
        """The sends with ``outcome`` (of ``sender``, when given) started after ``after``."""
        return [s for s in self.sends if s.outcome == outcome and s.started > after
                and (sender is None or s.sender == sender)]

    def unreported(self) -> list[Send]:
        """Sends that neither got an ok nor told their caller why: must stay empty."""
        return [s for s in self.sends if s.outcome not in ("ok", "error", "raised")]

    async def send(self, sender: str, call: Callable[[], Awaitable[dict[str, Any]]],
                   timeout: float) -> Send:
        """Run one send (bounded by ``timeout``) and file its outcome."""
        started = time.monotonic()
        try:
            ack = await asyncio.wait_for(call(), timeout)
        except ConnectionError as exc:
            entry = Send(sender, started, time.monotonic(), "raised", detail=str(exc))
        except asyncio.TimeoutError:
            entry = Send(sender, started, time.monotonic(), "hung",
                         detail=f"no answer and no error within {timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - filed, and the test asserts there are none
            entry = Send(sender, started, time.monotonic(), "crashed",
                         detail=f"{type(exc).__name__}: {exc}")
        else:
            if ack.get("status") == "ok" and isinstance(ack.get("message_id"), str):
                entry = Send(sender, started, time.monotonic(), "ok",
                             message_id=ack["message_id"])
            elif isinstance(ack.get("error"), str) and isinstance(ack.get("code"), int):
                entry = Send(sender, started, time.monotonic(), "error", code=ack["code"],
                             detail=ack["error"])
            else:
                entry = Send(sender, started, time.monotonic(), "malformed", detail=repr(ack))
        self.sends.append(entry)
        return entry


async def keep_sending(log: SendLog, sender: str, send: Callable[[str], Awaitable[dict[str, Any]]],
                       stop: asyncio.Event, *, pace: float = 0.02, timeout: float = 10.0,
                       limit: int = 5000) -> None:
    """Send numbered messages until ``stop`` is set (at most ``limit``), ``pace`` apart."""
    for seq in range(limit):
        if stop.is_set():
            return
        await log.send(sender, functools.partial(send, f"{sender} {seq}"), timeout)
        with contextlib.suppress(asyncio.TimeoutError):  # the pace, cut short by stop
            await asyncio.wait_for(stop.wait(), pace)


def undelivered(log: SendLog, watches: list[Watch]) -> list[str]:
    """Acknowledged messages missing at a connection that was up from send to ack."""
    missing = []
    for sent in log.of("ok"):
        for watch in watches:
            if watch.connected_throughout(sent.started, sent.finished) \
                    and not watch.ids[sent.message_id or ""]:
                missing.append(f"{sent.sender}'s {sent.message_id} "
                               f"(sent at {sent.started:.3f}) never reached {watch.name}")
    return missing


def checked_deliveries(log: SendLog, watches: list[Watch]) -> int:
    """How many (acknowledged message, connection) pairs :func:`undelivered` checks."""
    return sum(1 for sent in log.of("ok") for watch in watches
               if watch.connected_throughout(sent.started, sent.finished))


def node_on(redis_url: str, state_home: Path) -> ServerProcess:
    """A ``roomz-server`` node on ``redis_url`` with the nodes' shared secret (not started)."""
    return ServerProcess("--redis-url", redis_url, state_home=state_home,
                         env={"JWT_SECRET_KEY": SECRET})
