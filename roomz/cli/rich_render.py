"""How the terminal draws rich messages: Markdown, code, diffs, subjects and questions.

Markdown is parsed by markdown-it-py (CommonMark and tables, raw HTML off, so ``<b>`` is
text) and drawn as styled lines: headings, emphasis, lists, tables with box lines, quotes
and code blocks. Code and diffs are highlighted by pygments. Every piece of text goes
through :func:`~roomz.cli.render.visible` on its way, so no escape sequence or control
character from a message reaches the screen. A rich message's body starts on the line
under its sender, indented, so none of its lines can pass for a line of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prompt_toolkit.formatted_text import FormattedText, PygmentsTokens, to_formatted_text
from prompt_toolkit.formatted_text.base import StyleAndTextTuples
from prompt_toolkit.utils import get_cwidth
from pygments import lex
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from roomz.content import CODE, DIFF, MARKDOWN
from roomz.message import Message
from roomz.questions import Question

from .render import clock, visible

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

INDENT = "    "  # where a rich message's body starts, under its sender
Line = list[tuple[str, str]]


@functools.cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt  # on the first Markdown message: starts faster

    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def header(message: Message, style: str, note: str = "") -> Line:
    """``HH:MM:SS Name (email):`` and a note after it."""
    return [("class:time", clock(message.timestamp) + " "), (style, visible(message.label)),
            ("", ":"), *([("class:system", " " + visible(note))] if note else [])]


def rich_message_line(message: Message, style: str, *, collapsed: int | None = None,
                      question: Question | None = None,
                      answered: Question | None = None) -> FormattedText:
    """A rich message: its header, then its body rendered by kind (Markdown, code, diff,
    question, answer). ``collapsed``: show only the subject, with the number that
    ``/expand`` takes."""
    subject = message.subject
    if collapsed is not None and subject:
        size = len(message.text.splitlines())
        return FormattedText([*header(message, style), ("", " "),
                              ("class:subject", "▸ " + visible(subject)),
                              ("class:system", f"  ({size} line{'s' * (size != 1)}: "
                                               f"/expand {collapsed} or Ctrl-O shows it)")])
    lines = [header(message, style)]
    if subject:
        lines.append([("", INDENT), ("class:subject", "▾ " + visible(subject))])
    lines.extend(body(message, question, answered))
    return FormattedText(_joined(lines))


def body(message: Message, question: Question | None = None,
         answered: Question | None = None) -> list[Line]:
    """The lines of a message's body, each indented by :data:`INDENT`."""
    if question is not None:
        lines = question_lines(question)
    elif message.answer_to is not None:
        lines = answer_lines(message, answered)
    elif message.content_type == MARKDOWN:
        lines = markdown_lines(message.text)
    elif message.content_type in (CODE, DIFF):
        lines = code_lines(message.text, message.language, diff=message.content_type == DIFF)
    else:
        lines = [[("", visible(line))] for line in message.text.splitlines()]
    return [[("", INDENT), *line] for line in lines]


def question_lines(question: Question) -> list[Line]:
    """``? Deploy?``, then ``1. yes`` per answer, then how to answer."""
    lines: list[Line] = [[("class:question", "? "), ("bold", visible(line))]
                         for line in question.text.splitlines()]
    for number, choice in enumerate(question.choices, 1):
        extra = " (type your text after the number)" if choice.free_text else ""
        lines.append([("class:answer-number", f"  {number}. "), ("", visible(choice.label)),
                      ("class:system", extra)])
    how = ("type the numbers, such as 1 3," if question.multi_select
           else "type its number, or Tab for the answers,")
    until = f"open {question.timeout:g} s" + (
        f", then “{visible(', '.join(question.labels(question.default)))}”"
        if question.default else "")
    lines.append([("class:system", f"  To answer, {how} then Enter ({until}).")])
    return lines


def answer_lines(message: Message, question: Question | None) -> list[Line]:
    """An answer, ``↳ yes``, or a question's timeout, ``⏱ No answer to ...``."""
    if message.timed_out:
        return [[("class:system", "⏱ " + visible(line))] for line in message.text.splitlines()]
    about = f" (to “{visible(question.text.splitlines()[0])}”)" if question else ""
    text = message.text.splitlines() or [""]
    return [[("class:answer", "↳ " + visible(text[0])), ("class:system", about)],
            *([("", "  " + visible(line))] for line in text[1:])]


def code_lines(code: str, language: str | None, *, diff: bool = False) -> list[Line]:
    """``code`` highlighted for ``language`` (a diff as one), line by line, controls shown
    as placeholders."""
    lexer: Lexer = DiffLexer() if diff else _lexer(language)
    fragments = to_formatted_text(PygmentsTokens(list(lex(code.rstrip("\n"), lexer))))
    lines: list[Line] = [[]]
    for style, text, *_ in fragments:
        for number, piece in enumerate(text.split("\n")):
            if number:
                lines.append([])
            if piece:
                lines[-1].append((f"{style} class:code", visible(piece)))
    while len(lines) > 1 and not lines[-1]:
        lines.pop()  # pygments ends with a line break of its own
    return [[("class:code-bar", "│ "), *line] for line in lines]


def _lexer(language: str | None) -> Lexer:
    try:
        return get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        return TextLexer()


def markdown_lines(text: str) -> list[Line]:
    """Markdown drawn as terminal lines."""
    return _Blocks(_markdown().parse(text)).lines


class _Blocks:
    """Walks markdown-it's block tokens and draws each block."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.lines: list[Line] = []
        self.prefix: list[str] = []  # list and quote markers of the enclosing blocks
        self.numbers: list[int | None] = []  # the next number of each open list (None: •)
        self.marker: str | None = None  # the list marker of the item's first line
        tokens = list(tokens)
        index = 0
        while index < len(tokens):
            index = self.block(tokens, index)

    def add(self, line: Line) -> None:
        """One line, under the current list and quote markers."""
        lead = "".join(self.prefix)
        if self.marker is not None:
            lead, self.marker = lead[:-len(self.marker)] + self.marker, None
        if self.lines and not self.prefix and self.lines[-1] and not line:
            return  # one blank line between blocks is enough
        self.lines.append([("class:md-marker", lead), *line] if lead else line)

    def gap(self) -> None:
        """A blank line between top-level blocks."""
        if self.lines and self.lines[-1] and not self.prefix:
            self.lines.append([])

    def block(self, tokens: list[Token], index: int) -> int:
        """Draw the block starting at ``tokens[index]``; the index after it."""
        token = tokens[index]
        kind = token.type
        if kind == "heading_open":
            self.gap()
            level = int(token.tag[1])
            style = "class:md-h1" if level == 1 else "class:md-h"
            for line in _inline(tokens[index + 1], style):
                self.add([(style, "#" * level + " "), *line])
            return index + 3
        if kind == "paragraph_open":
            if not self.prefix:
                self.gap()
            for line in _inline(tokens[index + 1]):
                self.add(line)
            return index + 3
        if kind in ("fence", "code_block"):
            self.gap()
            for line in code_lines(token.content, token.info.strip().split(" ")[0] or None):
                self.add(line)
            return index + 1
        if kind in ("bullet_list_open", "ordered_list_open"):
            if not self.prefix:
                self.gap()
            self.numbers.append(int(token.attrs.get("start", 1) or 1)
                                if kind == "ordered_list_open" else None)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.numbers.pop()
        elif kind == "list_item_open":
            number = self.numbers[-1]
            self.marker = "• " if number is None else f"{number}. "
            if number is not None:
                self.numbers[-1] = number + 1
            self.prefix.append(" " * len(self.marker))
        elif kind == "list_item_close":
            self.prefix.pop()
            self.marker = None
        elif kind == "blockquote_open":
            self.gap()
            self.prefix.append("│ ")
        elif kind == "blockquote_close":
            self.prefix.pop()
        elif kind == "hr":
            self.gap()
            self.add([("class:md-marker", "─" * 40)])
        elif kind == "table_open":
            self.gap()
            return self.table(tokens, index)
        return index + 1

    def table(self, tokens: list[Token], index: int) -> int:
        """Draw a table with box lines, its header row bold; the index after it."""
        rows: list[list[Line]] = []
        aligns: list[str] = []
        while tokens[index].type != "table_close":
            token = tokens[index]
            if token.type == "tr_open":
                rows.append([])
            elif token.type in ("th_open", "td_open"):
                style = "bold" if token.type == "th_open" else ""
                cell = [fragment for line in _inline(tokens[index + 1], style)
                        for fragment in line]
                rows[-1].append(cell)
                if len(rows) == 1:
                    aligns.append(str(token.attrs.get("style", "")))
            index += 1
        columns = max(len(row) for row in rows)
        widths = [max((_width(row[c]) for row in rows if c < len(row)), default=0)
                  for c in range(columns)]
        rule = "─┼─".join("─" * w for w in widths)
        for number, row in enumerate(rows):
            line: Line = []
            for c in range(columns):
                cell = row[c] if c < len(row) else []
                pad = " " * (widths[c] - _width(cell))
                right = c < len(aligns) and "right" in aligns[c]
                line += [("", pad), *cell] if right else [*cell, ("", pad)]
                if c < columns - 1:
                    line.append(("class:md-marker", " │ "))
            self.add(line)
            if number == 0:
                self.add([("class:md-marker", rule)])
        return index + 1


def _inline(token: Token, base: str = "") -> list[Line]:
    """An inline token's text as lines, styled by emphasis, code and links."""
    lines: list[Line] = [[]]
    styles = [base] if base else []
    link: str | None = None
    for child in token.children or []:
        kind = child.type
        style = " ".join(styles)
        if kind in ("text", "html_inline"):
            lines[-1].append((style, visible(child.content)))
        elif kind == "code_inline":
            lines[-1].append((f"{style} class:md-code", visible(child.content)))
        elif kind in ("softbreak", "hardbreak"):
            lines.append([])
        elif kind.endswith("_open") and kind != "link_open":
            styles.append({"strong_open": "bold", "em_open": "italic",
                           "s_open": "strike"}.get(kind, ""))
        elif kind.endswith("_close") and kind != "link_close":
            if len(styles) > (1 if base else 0):
                styles.pop()
        elif kind == "link_open":
            link = str(child.attrs.get("href", ""))
            styles.append("underline")
        elif kind == "link_close":
            styles.pop()
            if link:
                lines[-1].append(("class:system", f" <{visible(link)}>"))
            link = None
        elif kind == "image":
            lines[-1].append((style, f"[image: {visible(child.content)}]"))
    return lines


def _width(cell: Line) -> int:
    return sum(get_cwidth(text) for _, text in cell)


def _joined(lines: list[Line]) -> StyleAndTextTuples:
    """Lines as one formatted text, a line break between each."""
    joined: list[Any] = []
    for number, line in enumerate(lines):
        if number:
            joined.append(("", "\n"))
        joined.extend(line)
    return joined
