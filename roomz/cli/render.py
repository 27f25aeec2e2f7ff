"""How the terminal shows chat: ``HH:MM:SS Name (email): text`` and dim system lines.

Text from the server never reaches the terminal raw: control characters and bidi
embeddings, overrides and isolates are shown as visible placeholders (:func:`visible`), so
a message cannot ring the bell, move the cursor back over its sender's label, or reorder
the line around it. A message's own line breaks are kept, each continuation line indented
under its text, so that no line of it can pass for a line of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.styles import Style, merge_styles, style_from_pygments_cls
from prompt_toolkit.utils import get_cwidth
from pygments.styles import get_style_by_name

from roomz.message import Message, display_name_of, label

STYLE = merge_styles([style_from_pygments_cls(get_style_by_name("monokai")), Style.from_dict({
    "time": "#8a8a8a",
    "name": "ansicyan",
    "own": "ansigreen bold",
    "bot": "ansimagenta",
    "system": "#8a8a8a italic",
    "good": "ansigreen",
    "warning": "ansiyellow",
    "error": "ansired",
    "toolbar": "reverse",
    # rich messages (rich_render.py)
    "subject": "bold",
    "question": "ansiyellow bold",
    "answer-number": "ansiyellow",
    "answer": "ansigreen",
    "code-bar": "#5f5f5f",
    "md-h1": "bold underline",
    "md-h": "bold",
    "md-marker": "#8a8a8a",
    "md-code": "ansicyan",
    # Messages from before the terminal started; last, so that it wins over their colours.
    "history": "#8a8a8a",
})])


def clock(moment: datetime | None = None) -> str:
    """``HH:MM:SS`` in local time."""
    return (moment.astimezone() if moment else datetime.now()).strftime("%H:%M:%S")


def _placeholder(code: int) -> str:
    """What stands for the character ``code``: ␀-␟ and ␡ for C0 and DEL, else ``<U+XXXX>``."""
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures
    return "\u2421" if code == 0x7F else f"<U+{code:04X}>"


#: Characters a terminal obeys instead of showing: C0 and C1 controls, DEL, the bidi
#: embeddings, overrides and isolates, and the line and paragraph separators. The bidi
#: marks (ALM, LRM, RLM) are not among them: Hebrew and Arabic text uses them all the
#: time, and they reorder nothing that a letter could not.
HIDDEN_CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),
                   *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)
_ONE_LINE = str.maketrans({code: _placeholder(code) for code in HIDDEN_CONTROLS})
_LINES = str.maketrans({code: _placeholder(code) for code in HIDDEN_CONTROLS
                        if chr(code) not in "\n\t"})


def visible(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control and bidi character replaced by a visible placeholder.

    With ``multiline`` newlines and tabs stay as they are (message text); otherwise they
    are shown too (names, emails, anything meant to be one line).
    """
    return text.translate(_LINES if multiline else _ONE_LINE)


def message_line(message: Message, *, own: bool = False, bot: bool = False) -> FormattedText:
    """A chat message; the user's own connection and hosted bots stand out by colour.

    Each line of the text after the first is indented to where the text starts.
    """
    style = "class:own" if own else "class:bot" if bot else "class:name"
    time, name = clock(message.timestamp) + " ", visible(message.label)
    return FormattedText([("class:time", time), (style, name),
                          ("", ": " + _indented(message.text, f"{time}{name}: "))])


def unsent_line(why: str, text: str) -> FormattedText:
    """Text the user typed that did not go, after why, so that nothing typed is lost:
    ``HH:MM:SS Not sent: why — text``, its later lines indented under the text."""
    time, why = clock() + " ", visible(why) + " — "
    return FormattedText([("class:time", time), ("class:error", why),
                          ("", _indented(text, time + why))])


def _indented(text: str, before: str) -> str:
    """``text`` made :func:`visible`, each line after the first indented by the width of
    ``before`` (what precedes the text on its first line)."""
    indent = "\n" + " " * get_cwidth(before)
    return visible(text.replace("\r\n", "\n"), multiline=True).replace("\n", indent)


def system_line(text: str, kind: str = "system", *, multiline: bool = False) -> FormattedText:
    """A line about the chat rather than in it: joins, leaves, errors, answers to commands.

    Controls in ``text`` are shown as placeholders, line breaks too unless ``multiline``
    (for our own text, such as ``/help``).
    """
    return FormattedText([("class:time", clock() + " "),
                          (f"class:{kind}", visible(text, multiline=multiline))])


def user_label(user: dict[str, Any] | None) -> str:
    """``Name (email)`` or the email of a wire ``user`` object, made :func:`visible`."""
    return visible(label(str((user or {}).get("email") or "someone"), display_name_of(user)))


def log_line(record: logging.LogRecord) -> FormattedText:
    """A log record as one system line: its message's first line, never a traceback."""
    kind = "error" if record.levelno >= logging.ERROR else "warning"
    return system_line(record.getMessage().split("\n", 1)[0], kind)
