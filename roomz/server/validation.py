"""Input rules of the Roomz protocol: emails, display names and message content."""

from __future__ import annotations

import html
import re
import unicodedata

MAX_EMAIL_LENGTH = 255
MAX_LOCAL_PART_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 50
MAX_CONTENT_LENGTH = 1000

_EMAIL = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
# Characters that would break a one-line "Name (email)" label.
_FORBIDDEN_IN_NAME = {"Cc", "Zl", "Zp"}


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
    if any(c != "\t" and unicodedata.category(c) in _FORBIDDEN_IN_NAME for c in name):
        return None
    return html.escape(name)


def clean_content(content: str) -> str:
    """Trim, HTML-escape and cut message content to 1000 characters.

    The cut never splits an entity such as ``&amp;``, so clients that unescape
    the text never show a broken ``&am``.
    """
    escaped = html.escape(content.strip())
    if len(escaped) <= MAX_CONTENT_LENGTH:
        return escaped
    cut = escaped[:MAX_CONTENT_LENGTH]
    amp = cut.rfind("&", MAX_CONTENT_LENGTH - 6)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut
