"""A chat message as plugins see it: who sent it, its text, when."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Message:
    """One ``message`` event.

    ``content`` is what the server sent (HTML-escaped); ``text`` is it unescaped, the
    form to show or parse. ``label`` is ``"Name (email)"``, or the email alone.
    """

    id: str
    email: str
    display_name: str | None
    content: str
    timestamp: datetime
    connection_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The message text as its author typed it (HTML entities unescaped)."""
        return html.unescape(self.content)

    @property
    def label(self) -> str:
        """``"Name (email)"`` when the sender's connection has a display name, else the email."""
        if self.display_name:
            return f"{self.display_name} ({self.email})"
        return self.email

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Message:
        """Build a message from the wire's ``message`` event data."""
        user = data.get("user") or {}
        name = user.get("display_name")
        return cls(
            id=str(data.get("id", "")),
            email=str(user.get("email", "")),
            display_name=html.unescape(name) if isinstance(name, str) and name else None,
            content=str(data.get("content", "")),
            timestamp=_parse_time(data.get("timestamp")),
            connection_id=data.get("connection_id"),
            raw=data,
        )


def _parse_time(value: Any) -> datetime:
    """An aware datetime from an ISO 8601 string; now (UTC) when it is missing or malformed."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.now(timezone.utc)
