"""Input rules of the Roomz protocol: emails, display names and message content."""

from __future__ import annotations

import html
import re
import unicodedata

from ..limits import MAX_MESSAGE_LENGTH

MAX_EMAIL_LENGTH = 255
MAX_LOCAL_PART_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 50
MAX_CONTENT_LENGTH = MAX_MESSAGE_LENGTH  # one number for the server and the clients' splitting

_EMAIL = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
# Unicode categories that would break a one-line label such as "Name (email)".
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def normalize_email(email: str) -> str:
    """Return ``email`` trimmed and lower-cased, the form the server stores and compares."""
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    """True when a normalized email matches the protocol's pattern and length limits."""
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        return False
    return len(email.split("@", 1)[0]) <= MAX_LOCAL_PART_LENGTH


def clean_display_name(name: str) -> str | None:
    """Return the trimmed, HTML-escaped display name, or None when it breaks the rules.

    Rules: 1-50 characters after trimming, no newlines, no control characters
    (tab excepted, as on the published server).
    """
    name = name.strip()
    if not 1 <= len(name) <= MAX_DISPLAY_NAME_LENGTH:
        return None
    if breaks_the_line(name, tabs=True):
        return None
    return html.escape(name)


def breaks_the_line(text: str, *, tabs: bool = False) -> bool:
    """True when ``text`` holds a line break or another control character (a tab only
    counts unless ``tabs``)."""
    return any(unicodedata.category(c) in _LINE_BREAKING and not (tabs and c == "\t")
               for c in text)


def content_too_long(content: str) -> str | None:
    """The error for message content over the limit, or None when it fits.

    The limit counts the characters as typed, after trimming: escaping comes later and
    costs the sender nothing, so 1000 ``&`` fit.
    """
    length = len(content.strip())
    if length <= MAX_CONTENT_LENGTH:
        return None
    return f"Message too long: {length} characters, at most {MAX_CONTENT_LENGTH}"


def clean_content(content: str) -> str:
    """Trim and HTML-escape message content; never cuts it (see :func:`content_too_long`)."""
    return html.escape(content.strip())
