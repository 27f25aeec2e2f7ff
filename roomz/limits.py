"""The message limit, and long text split into messages that arrive whole on any server.

Our server refuses a message over 1000 characters (counted as typed, after trimming);
the published 0.4.0 server counts the HTML-escaped form and cuts it at 1000, so one ``&``
costs five there. A part from :func:`split_text` passes both, so nothing is refused or cut.
"""

from __future__ import annotations

import html
import unicodedata

#: Characters in one message, counted as typed after trimming (both servers' number).
MAX_MESSAGE_LENGTH = 1000
#: The characters ``html.escape`` rewrites, and how long each becomes (``'``: ``&#x27;``).
_ESCAPED_LENGTH = {char: len(html.escape(char)) for char in "&<>\"'"}
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # str.splitlines' set
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")  # zero-width joiner, variation selectors


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` trimmed and split into messages that no server refuses or cuts, in order.

    Each part is trimmed and at most ``limit`` characters once HTML-escaped, so at most
    ``limit`` as typed too. A part ends at the last line break that fits, else at the
    last other whitespace, else anywhere, but not between a letter and its marks.
    Only whitespace is lost, where the text is split. Whitespace alone gives no parts.
    Raises ``ValueError`` when ``limit`` is too small for one escaped character (6).
    """
    smallest = max(_ESCAPED_LENGTH.values())  # one escaped apostrophe
    if limit < smallest:
        raise ValueError(f"limit must be at least {smallest} characters, got {limit}")
    parts: list[str] = []
    rest = text.strip()
    while rest:
        fits = _fitting(rest, limit)
        if fits == len(rest):
            parts.append(rest)
            break
        cut = _split_point(rest, fits)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts


def escaped_length(text: str) -> int:
    """How long ``text`` is once HTML-escaped: what the published server counts."""
    return sum(_ESCAPED_LENGTH.get(char, 1) for char in text)


def _fitting(text: str, limit: int) -> int:
    """How many leading characters of ``text`` stay within ``limit`` once HTML-escaped."""
    used = 0
    for index, char in enumerate(text):
        used += _ESCAPED_LENGTH.get(char, 1)
        if used > limit:
            return index
    return len(text)


def _split_point(text: str, fits: int) -> int:
    """Where the next part of trimmed ``text`` ends, given that ``fits`` characters fit."""
    window = text[:fits + 1]  # whitespace just after the part is a clean end too
    for is_break in (_LINE_BREAKS.__contains__, str.isspace):
        for index in range(len(window) - 1, 0, -1):
            if is_break(window[index]):
                return index
    cut = fits
    while cut > 1 and _inside_character(text, cut):
        cut -= 1
    return fits if _inside_character(text, cut) else cut


def _inside_character(text: str, index: int) -> bool:
    """True when cutting ``text`` before ``index`` would split what shows as one character."""
    char = text[index]
    return unicodedata.combining(char) != 0 or char in _JOINERS or text[index - 1] == "\u200d"
