"""How the terminal shows chat: ``HH:MM:SS Name (email): text`` and dim system lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.styles import Style

from roomz_bots.message import Message, display_name_of, label

STYLE = Style.from_dict({
    "time": "#8a8a8a",
    "name": "ansicyan",
    "own": "ansigreen bold",
    "bot": "ansimagenta",
    "system": "#8a8a8a italic",
    "good": "ansigreen",
    "warning": "ansiyellow",
    "error": "ansired",
    "toolbar": "reverse",
})


def clock(moment: datetime | None = None) -> str:
    """``HH:MM:SS`` in local time."""
    return (moment.astimezone() if moment else datetime.now()).strftime("%H:%M:%S")


def message_line(message: Message, *, own: bool = False, bot: bool = False) -> FormattedText:
    """A chat message; the user's own connection and hosted bots stand out by colour."""
    style = "class:own" if own else "class:bot" if bot else "class:name"
    return FormattedText([("class:time", clock(message.timestamp) + " "),
                          (style, message.label), ("", ": " + message.text)])


def system_line(text: str, kind: str = "system") -> FormattedText:
    """A line about the chat rather than in it: joins, leaves, errors, answers to commands."""
    return FormattedText([("class:time", clock() + " "), (f"class:{kind}", text)])


def user_label(user: dict[str, Any] | None) -> str:
    """``Name (email)`` or the email of a wire ``user`` object."""
    return label(str((user or {}).get("email") or "someone"), display_name_of(user))
