"""``ClientOptions``: what both clients are built with, declared once for both constructors."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

#: What kind of client a connection says it is (the server's ``who`` lists it).
CLIENT_KINDS = ("terminal", "page", "bot", "script")


@dataclass(eq=False)
class ClientOptions:
    """The constructor parameters of :class:`AsyncClient` and :class:`SyncClient`.

    ``session_token`` is a magic-link token (from the sign-in mail), redeemed by
    ``connect()``. With ``session_cache_file`` the resulting session is kept there, so later
    runs connect without a new token. Reconnection waits ``reconnect_delay`` seconds, then
    doubles the wait up to ``reconnect_delay_max``, for ``max_reconnect_attempts`` attempts
    (None: until it works). ``kind`` and ``name`` say what this client is, for the list of
    connections other clients see (``who``, an extension): a ``"bot"`` named ``"helper"``.
    """

    server_url: str
    session_token: str = field(default="", repr=False)
    _: KW_ONLY
    reconnect: bool = True
    reconnect_delay: float = 1.0
    max_reconnect_attempts: int | None = 5
    connection_timeout: float = 10.0
    session_cache_file: str | Path | None = None
    reconnect_delay_max: float = 30.0
    kind: str = "script"
    name: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.server_url) if isinstance(self.server_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"server_url must be an http:// or https:// URL such as http://localhost:8000, "
                f"got {self.server_url!r}"
            )
        if min(self.reconnect_delay, self.reconnect_delay_max, self.connection_timeout) <= 0 or (
                self.max_reconnect_attempts is not None and self.max_reconnect_attempts < 0):
            raise ValueError("reconnect_delay, reconnect_delay_max and connection_timeout must "
                             "be positive, and max_reconnect_attempts at least 0 or None")
        if self.kind not in CLIENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(CLIENT_KINDS)}, got {self.kind!r}")
        self.server_url = self.server_url.rstrip("/")
