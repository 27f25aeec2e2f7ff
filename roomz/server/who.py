"""Who is here: each connection says what kind of client it is, and ``who`` lists them.

A client may name itself in the Socket.IO CONNECT auth payload (an extension, see
docs/protocol.md 3.9): ``{"client": {"kind": "bot", "name": "helper"}}``. Clients that
say nothing (the published 0.4.0 client among them) are listed with kind ``null``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from ..options import CLIENT_KINDS as KINDS

MAX_CLIENT_NAME_LENGTH = 50


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What a connection said about itself, and since when it is connected."""

    kind: str | None = None
    name: str | None = None
    since: str = ""

    def listed(self) -> dict[str, Any]:
        """Its fields in a ``who`` answer."""
        return {"kind": self.kind, "name": self.name, "since": self.since}


class Listed(Protocol):
    """A connection as :func:`listing` reads it: this node's (``roomz.server.chat.Connection``)
    or another's (``roomz.server.redis_presence.ConnectionRecord``)."""

    @property
    def email(self) -> str: ...
    @property
    def connection_id(self) -> str: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def client(self) -> ClientInfo: ...


def client_of(auth: Any) -> ClientInfo:
    """The ``client`` of a CONNECT auth payload; raises ``ValueError`` saying what is wrong.

    Anything but an object with ``client`` says nothing about the client: the published
    protocol ignores the auth payload, and other extensions may use it.
    """
    since = datetime.now(timezone.utc).isoformat()
    client = auth.get("client") if isinstance(auth, dict) else None
    if client is None:
        return ClientInfo(since=since)
    if not isinstance(client, dict):
        raise ValueError("'client' in the auth payload must be an object: "
                         '{"kind": "bot", "name": "helper"}')
    kind, name = client.get("kind"), client.get("name")
    if kind not in KINDS:
        raise ValueError(f"'client.kind' in the auth payload must be one of "
                         f"{', '.join(KINDS)}")
    if name is not None and (not isinstance(name, str) or not name.strip()
                             or len(name) > MAX_CLIENT_NAME_LENGTH or not name.isprintable()):
        raise ValueError(f"'client.name' in the auth payload must be 1-"
                         f"{MAX_CLIENT_NAME_LENGTH} printable characters")
    return ClientInfo(kind, name.strip() if name else None, since)


def listing(asking: Listed, connections: Iterable[Listed]) -> list[dict[str, Any]]:
    """The ``who`` answer's ``connections``: those of ``asking``'s user, oldest first, the
    asking one marked ``"you": true``; ``connections`` may come from any node."""
    mine = [c for c in connections if c.email == asking.email]
    mine.sort(key=lambda c: c.client.since)
    return [{"connection_id": c.connection_id, "display_name": c.display_name,
             **c.client.listed(), "you": c.connection_id == asking.connection_id}
            for c in mine]
