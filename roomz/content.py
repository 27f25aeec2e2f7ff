"""Rich messages: what a message's text is (Markdown, code, a diff), and long ones in parts.

A message may say what its ``content`` is with ``content_type`` (an extension, see
docs/protocol.md 3.8): plain text unless it says otherwise. Bots return :class:`Markdown`
or :class:`Code` from a command, clients send them with ``send(text, content_type=...)``,
and the terminal and the page render each kind. A ``subject`` makes a message collapsible.

Long rich text goes out in parts like plain text (:func:`roomz.limits.split_text`), but
:func:`split_content` cuts Markdown between its blocks, never inside one when it can help
it, and a fenced code block that must be cut is closed at the end of a part and opened
again, with its language, at the start of the next: every part renders on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .limits import MAX_MESSAGE_LENGTH, escaped_length, split_text

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
CODE = "text/code"
DIFF = "text/diff"
QUESTION = "application/x-question"
#: Every ``content_type`` a message may have; anything else is refused (400).
CONTENT_TYPES = (PLAIN, MARKDOWN, CODE, DIFF, QUESTION)
#: What text a message of each type holds, for people (help texts, errors).
KINDS = {PLAIN: "plain text", MARKDOWN: "Markdown", CODE: "code", DIFF: "a diff",
         QUESTION: "a question"}

MAX_SUBJECT_LENGTH = 200
MAX_LANGUAGE_LENGTH = 40
LANGUAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+#.-]*$")  # python, c++, c#, objective-c
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class Rich:
    """Text that is more than plain text: what a command may return instead of a ``str``."""

    text: str
    subject: str | None = None  # shown collapsed under this line; None: shown open

    content_type = PLAIN

    def fields(self) -> dict[str, Any]:
        """The wire fields that go with the text: ``content_type``, and the others it has."""
        fields: dict[str, Any] = {"content_type": self.content_type}
        if self.subject:
            fields["subject"] = self.subject
        return fields

    def parts(self, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
        """The text in messages of at most ``limit`` characters (see :func:`split_content`)."""
        return split_content(self.text, self.content_type, limit)


@dataclass(frozen=True)
class Markdown(Rich):
    """Markdown (CommonMark with tables): headings, emphasis, lists, tables, code blocks.

    Raw HTML in it is shown as text, never obeyed, on every client.
    """

    content_type = MARKDOWN


@dataclass(frozen=True)
class Code(Rich):
    """Source code, shown in a fixed-width font and highlighted for ``language`` (a
    name pygments knows, such as ``python``; None: guessed or plain)."""

    language: str | None = None

    content_type = CODE

    def fields(self) -> dict[str, Any]:
        """``content_type``, ``subject`` and ``language``."""
        fields = super().fields()
        if self.language:
            fields["language"] = self.language
        return fields


@dataclass(frozen=True)
class Diff(Rich):
    """A unified diff: added lines green, removed lines red."""

    content_type = DIFF


def split_content(text: str, content_type: str = PLAIN,
                  limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` in parts that no server refuses or cuts (as :func:`split_text`), each of
    which renders on its own: Markdown between blocks, code and diffs between lines."""
    if content_type in (CODE, DIFF):
        return split_lines(text, limit)
    if content_type != MARKDOWN:
        return split_text(text, limit)
    text = text.strip()
    if escaped_length(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for block in _blocks(text):
        for piece in _pieces(block, limit):
            joined = f"{current}\n\n{piece}" if current else piece
            if escaped_length(joined) <= limit:
                current = joined
            else:
                if current:
                    parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return parts


def _blocks(text: str) -> list[list[str]]:
    """The Markdown's blocks, as lines: split at blank lines outside fenced code."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1).startswith(fence) \
                and not match.group(2).strip():
            fence = None
        if fence is None and not line.strip():
            if current:
                blocks.append(current)
            current = []
        else:
            current.append(line)
    if current:
        blocks.append(current)
    return blocks


def _pieces(block: list[str], limit: int) -> list[str]:
    """One block as pieces of at most ``limit`` escaped characters: itself when it fits;
    a fenced block cut between lines, each piece fenced again; else cut as plain text."""
    text = "\n".join(block)
    if escaped_length(text) <= limit:
        return [text]
    opening = _FENCE.match(block[0])
    if opening is None:
        return split_text(text, limit)
    fence_line, fence = block[0], opening.group(1)
    closed = len(block) > 1 and block[-1].strip().startswith(fence)
    body = block[1:-1] if closed else block[1:]
    room = limit - escaped_length(fence_line) - escaped_length(fence) - 2  # two line breaks
    if room < 6:  # the fence alone fills a message: no code block can be kept
        return split_text(text, limit)
    return [f"{fence_line}\n{chunk}\n{fence}" for chunk in split_lines("\n".join(body), room)]


def split_lines(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Code or a diff in parts of whole lines, their indentation kept; a line longer than
    a message is cut as plain text."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for line in text.strip("\n").rstrip().splitlines():
        pieces = [line] if escaped_length(line) <= limit else split_text(line, limit)
        for piece in pieces:
            size = escaped_length(piece) + (1 if current else 0)
            if current and used + size > limit:
                parts.append("\n".join(current))
                current, used, size = [], 0, escaped_length(piece)
            current.append(piece)
            used += size
    if current and "\n".join(current).strip():
        parts.append("\n".join(current))
    return parts
