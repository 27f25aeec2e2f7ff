"""A chat message as the terminal and bots see it: who sent it, its text, when.

It lives in the client package so that both can use it without crossing layers:
``roomz.cli`` shows it, and ``roomz_bots`` hands it to plugins (as
``roomz_bots.Message``).
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .content import CONTENT_TYPES, PLAIN

if TYPE_CHECKING:
    from .questions import Question


class Message:
    """One ``message`` event, read from the event as it came from the server.

    ``content`` is what the server sent (HTML-escaped); ``text`` is it unescaped, the
    form to show or parse. ``label`` is ``"Name (email)"``, or the email alone. The other
    fields are read from the event when asked for: a bot builds one per message it hears.
    """

    __slots__ = ("raw", "content", "text", "_parsed")

    def __init__(self, event: dict[str, Any]) -> None:
        content = event.get("content", "")
        if not isinstance(content, str):
            content = str(content)
        #: The event exactly as it came from the server.
        self.raw = event
        self.content = content
        #: The message text as its author typed it (HTML entities unescaped).
        self.text = html.unescape(content) if "&" in content else content
        self._parsed: datetime | None = None

    @property
    def id(self) -> str:
        """The server's id for this message."""
        return str(self.raw.get("id", ""))

    @property
    def email(self) -> str:
        """The sender's email."""
        return str(self._user.get("email", ""))

    @property
    def display_name(self) -> str | None:
        """The display name of the sender's connection (unescaped), or None."""
        return display_name_of(self._user)

    @property
    def connection_id(self) -> str | None:
        """The sending connection, on servers that name it."""
        return self.raw.get("connection_id")

    @property
    def timestamp(self) -> datetime:
        """When the server received it, as an aware datetime (parsed when first asked for)."""
        if self._parsed is None:
            self._parsed = parse_time(self.raw.get("timestamp"))
        return self._parsed

    @property
    def content_type(self) -> str:
        """What the text is: ``text/plain`` (also for any type this client does not know),
        ``text/markdown``, ``text/code``, ``text/diff`` or ``application/x-question``."""
        kind = self.raw.get("content_type")
        return kind if kind in CONTENT_TYPES else PLAIN

    @property
    def subject(self) -> str | None:
        """The line a collapsible message shows while closed (unescaped), or None."""
        subject = self.raw.get("subject")
        return html.unescape(subject) if isinstance(subject, str) and subject else None

    @property
    def language(self) -> str | None:
        """The language of a code message, when it names one."""
        language = self.raw.get("language")
        return language if isinstance(language, str) and language else None

    @property
    def question(self) -> Question | None:
        """The question this message asks, with its choices, or None."""
        from .questions import Question
        return Question.of(self.raw)

    @property
    def answer_to(self) -> str | None:
        """The id of the question this message answers (or whose timeout it is), or None."""
        answer_to = self.raw.get("answer_to")
        return answer_to if isinstance(answer_to, str) else None

    @property
    def timed_out(self) -> bool:
        """True for the message a question's timeout sends."""
        return self.raw.get("timed_out") is True

    @property
    def label(self) -> str:
        """``"Name (email)"`` when the sender's connection has a display name, else the email."""
        return label(self.email, self.display_name)

    @property
    def _user(self) -> dict[str, Any]:
        user = self.raw.get("user")
        return user if isinstance(user, dict) else {}

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, label={self.label!r}, text={self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def display_name_of(user: dict[str, Any] | None) -> str | None:
    """The display name of a wire ``user`` object, HTML-unescaped, or None when it has none."""
    name = (user or {}).get("display_name")
    return html.unescape(name) if name and isinstance(name, str) else None


def label(email: str, display_name: str | None) -> str:
    """How chat shows a person: ``"Name (email)"``, or the email without a display name."""
    return f"{display_name} ({email})" if display_name else email


def parse_time(value: Any) -> datetime:
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
