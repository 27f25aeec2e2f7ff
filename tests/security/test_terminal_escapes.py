"""Someone sends control characters to make the terminal lie: ring the bell, move the cursor
back over the sender's label, reverse the line with bidi overrides, fake a line of its own.

Whatever the text, the terminal shows such characters as visible placeholders (␇, ␈, …
for C0 controls, ``<U+202E>`` for the others): in message text (newlines and tabs
excepted), display names, emails and every line that quotes the server. A message's
continuation lines are indented under its text. Everything else, the bidi marks that
Hebrew and Arabic use included, is shown as it was written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from prompt_toolkit.formatted_text import FormattedText

from roomz.cli.render import HIDDEN_CONTROLS, message_line, system_line, user_label, visible
from roomz_bots.message import Message
from tests.cli.helpers import (
    ANSI,
    at_prompt,
    expect_answering,
    open_terminal,
    text_of,
)

from .hostile_server import (
    GREETING,
    NOW,
    SENTINEL,
    HostileServer,
    hostile_server,
    message,
    user,
)

TIMEOUT = 5.0
#: Every character that must never reach the terminal raw, as one string.
CONTROLS = "".join(chr(code) for code in HIDDEN_CONTROLS)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: Text that must come out exactly as it went in: an emoji family joined with ZWJ, a flag
#: made of tag characters, CJK, combining marks, Hebrew and Arabic with the bidi marks
#: (LRM, RLM, ALM) their writers use.
ORDINARY = ("👩\u200d👩\u200d👧 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f "
            "漢字かな한국어 e\u0301 n\u0303 "
            "שלום\u200e (GPL)\u200f עולם مرحبا\u061c 2024\u200f")


def raw_controls(text: str, *, allowed: str = "") -> list[str]:
    """The control and bidi characters in ``text`` (other than ``allowed``), by code point."""
    return [f"U+{ord(c):04X}" for c in text if c in CONTROLS and c not in allowed]


def shown(line: FormattedText) -> str:
    """The text of a rendered line."""
    return text_of(line)


# -- the placeholders ---------------------------------------------------------------------

@pytest.mark.parametrize(("char", "placeholder"), [
    ("\x00", "␀"), ("\x07", "␇"), ("\x08", "␈"), ("\x1b", "␛"), ("\r", "␍"), ("\x7f", "␡"),
    ("\x9b", "<U+009B>"), ("\x85", "<U+0085>"), ("\u202e", "<U+202E>"), ("\u2066", "<U+2066>"),
    ("\u2028", "<U+2028>"),
], ids=repr)
def test_each_control_has_a_visible_placeholder(char: str, placeholder: str) -> None:
    """C0 controls and DEL show as Unicode control pictures; C1 and bidi controls as <U+XXXX>."""
    assert visible(f"a{char}b") == f"a{placeholder}b"


def test_every_c0_c1_and_bidi_control_is_covered() -> None:
    """Nothing the issue lists is left out: C0, DEL, C1, the bidi embeddings, overrides and
    isolates."""
    listed = {*range(0x20), 0x7F, *range(0x80, 0xA0), *map(ord, BIDI)}
    assert listed <= set(HIDDEN_CONTROLS)


def test_ordinary_text_of_every_script_is_shown_as_written() -> None:
    """Emoji sequences, CJK, combining marks, and Hebrew and Arabic with their bidi marks come
    out unchanged: in message text, in names, and in system lines."""
    assert visible(ORDINARY) == ORDINARY
    sender = user("mallory@example.com", ORDINARY)
    line = shown(message_line(Message(message(ORDINARY, sender=sender))))
    assert line.endswith(f"{ORDINARY} (mallory@example.com): {ORDINARY}"), line
    assert shown(system_line(ORDINARY)).endswith(ORDINARY)


def test_message_text_keeps_newlines_and_tabs_and_nothing_else() -> None:
    """A message may span lines and hold tabs; every other control is shown, not obeyed."""
    event = message("first\tline\nsecond\x07line\x1b[2J\u202eend")
    line = message_line(Message(event))
    assert shown(line).endswith("first\tline\n" + " " * 28 + "second␇line␛[2J<U+202E>end")
    assert raw_controls(shown(line), allowed="\n\t") == []


def test_a_message_cannot_fake_a_line_of_its_own() -> None:
    """Each line of a message after the first is indented to where its text starts, so
    '...\\n12:00:00 admin@example.com: ...' cannot pass for admin's line; CRLF is a line
    break, a lone CR a placeholder."""
    fake = "hi\n12:00:00 admin@example.com: send me your token\r\nplease\rnow"
    line = shown(message_line(Message(message(fake, sender=user("mallory@example.com")))))
    first, *rest = line.split("\n")
    indent = " " * first.index("hi")
    assert first.endswith("mallory@example.com: hi")
    assert rest == [f"{indent}12:00:00 admin@example.com: send me your token",
                    f"{indent}please␍now"], line


def test_backspaces_cannot_overwrite_the_label() -> None:
    """'\\b\\b\\b\\bEvil' after a label stays four visible ␈ and the word, label intact."""
    event = message("\b\b\b\bEvil", sender=user("mallory@example.com", "Mallory"))
    text = shown(message_line(Message(event)))
    assert text.endswith("Mallory (mallory@example.com): ␈␈␈␈Evil")
    assert "\b" not in text


@pytest.mark.parametrize("field", ["email", "display_name"])
def test_names_and_emails_are_one_visible_line(field: str) -> None:
    """A display name or email is always one line: even newlines and tabs are shown."""
    sender = {**user("mallory@example.com", "Mallory"),
              field: "x\n12:00:00 admin@example.com: trust me\t\u202e\x1b]0;title\x07"}
    label = user_label(sender)
    assert "\n" not in label and raw_controls(label) == []
    assert "␊12:00:00 admin@example.com: trust me␉<U+202E>␛]0;title␇" in label
    line = shown(message_line(Message(message("hi", sender=sender))))
    assert line.count("\n") == 0 and raw_controls(line) == []


def test_system_lines_are_one_line_unless_asked_and_show_controls() -> None:
    """A system line shows any control it quotes, line breaks included; only a multi-line
    one (/help) keeps its own line breaks."""
    assert shown(system_line("Error: no\n12:00:00 admin\x07")).endswith(
        "Error: no␊12:00:00 admin␇")
    line = shown(system_line("Commands:\n/help\x07\u202e", multiline=True))
    assert line.endswith("Commands:\n/help␇<U+202E>")


# -- the terminal, against a server that sends all of it -----------------------------------

NASTY = "x\n12:00:00 admin@example.com: trust me\x07\x08\x1b[2J\x9b\u202e\u2066\x00\x7f"
NASTY_USER = {"id": "user:m", "email": f"mallory{NASTY}@example.com",
              "display_name": f"Mallory{NASTY}"}
NASTY_SCRIPT = [
    ("message", message(f"hello{NASTY}", sender=NASTY_USER, n=2)),
    ("user_joined", {"user": NASTY_USER, "timestamp": NOW, "total_connections": 2}),
    ("user_left", {"user": NASTY_USER, "timestamp": NOW, "remaining_connections": 1}),
    ("display_name_changed", {"user": NASTY_USER, "timestamp": NOW}),
]


@pytest.fixture
def nasty() -> Iterator[HostileServer]:
    """A server whose events are well formed but full of controls, its greeting included,
    and whose acknowledgements are errors full of them too."""
    greeting = {**GREETING, "user": NASTY_USER}
    with hostile_server(greetings=[greeting], script=NASTY_SCRIPT,
                        ack={"error": f"no{NASTY}", "code": 400}) as server:
        yield server


async def test_no_line_the_terminal_shows_carries_a_raw_control(
    nasty: HostileServer, tmp_path: Path,
) -> None:
    """Messages, joins, leaves, renames, the greeting, error answers and the toolbar: every
    control the server sent is a placeholder, and no server text starts a line of its own
    (a message's second line is indented under its text)."""
    async with open_terminal(nasty.url, tmp_path) as term:
        await term.command("/token any-token", "Connected to")
        await term.wait_for(re.escape(SENTINEL))
        await term.wait_for("cleared their display name|is now called")
        await term.command("hello", "Not sent")
        await term.command("/name Alice", "Name not changed")
        lines: list[str] = term.texts
        toolbar = term.toolbar()
    for text in [*lines, toolbar]:
        assert raw_controls(text, allowed="\n") == [], text
        assert "\n12:00:00 admin" not in text, text
    assert any("hello" in text and "␇␈␛[2J<U+009B><U+202E><U+2066>␀␡" in text
               for text in lines), lines


# -- a real terminal: roomz-cli in a pseudo-terminal ----------------------------------------

def test_backspaces_do_not_reach_the_screen(tmp_path: Path, children: list[Any]) -> None:
    """On the screen of roomz-cli, a message '\\b\\b\\b\\bEvil' is drawn after its sender's whole
    label as ␈␈␈␈Evil: the terminal never receives the backspaces that would move the cursor
    back over 'Mallory (mallory@example.com): '."""
    evil = message("\b\b\b\bEvil", sender=user("mallory@example.com", "Mallory"), n=3)
    with hostile_server(script=[("message", evil)]) as server:
        child = at_prompt(tmp_path, server.url, children)
        child.send("/token any-token\r")
        expect_answering(child, re.escape(SENTINEL))
        child.send("/quit\r")
        expect_answering(child, pexpect.EOF)
    screen = child.logfile_read.getvalue()
    line = re.search(rf"Mallory \(mallory@example\.com\){ANSI}: (?P<text>[^\r\n]*)Evil", screen)
    assert line is not None, screen
    assert line["text"].startswith("␈␈␈␈") and "\b" not in line["text"], line[0]
