"""A chat message as plugins see it: who sent it, its text, when."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any


class Message:
    """One ``message`` event.

    ``content`` is what the server sent (HTML-escaped); ``text`` is it unescaped, the
    form to show or parse. ``label`` is ``"Name (email)"``, or the email alone.
    """

    __slots__ = ("id", "email", "display_name", "content", "text", "connection_id", "raw",
                 "_timestamp", "_parsed")

    def __init__(self, id: str, email: str, display_name: str | None, content: str,
                 timestamp: datetime | str | None = None, connection_id: str | None = None,
                 raw: dict[str, Any] | None = None) -> None:
        self.id = id
        self.email = email
        self.display_name = display_name
        self.content = content
        #: The message text as its author typed it (HTML entities unescaped).
        self.text = html.unescape(content)
        self._timestamp = timestamp
        self._parsed: datetime | None = None
        self.connection_id = connection_id
        #: The event exactly as it came from the server.
        self.raw = raw if raw is not None else {}

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Message:
        """Build a message from the wire's ``message`` event data."""
        user = data.get("user") or {}
        name = user.get("display_name")
        return cls(str(data.get("id", "")), str(user.get("email", "")),
                   html.unescape(name) if name and isinstance(name, str) else None,
                   str(data.get("content", "")), data.get("timestamp"),
                   data.get("connection_id"), data)

    @property
    def timestamp(self) -> datetime:
        """When the server received it, as an aware datetime (parsed when first asked for)."""
        if self._parsed is None:
            self._parsed = _parse_time(self._timestamp)
        return self._parsed

    @property
    def label(self) -> str:
        """``"Name (email)"`` when the sender's connection has a display name, else the email."""
        return label(self.email, self.display_name)

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, label={self.label!r}, text={self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def label(email: str, display_name: str | None) -> str:
    """How chat shows a person: ``"Name (email)"``, or the email without a display name."""
    return f"{display_name} ({email})" if display_name else email


def _parse_time(value: Any) -> datetime:
    """An aware datetime from an ISO 8601 string; now (UTC) when it is missing or malformed."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.now(timezone.utc)
