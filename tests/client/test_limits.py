"""``roomz.limits.split_text``: long text in parts that neither server refuses nor cuts."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomz.limits import MAX_MESSAGE_LENGTH, split_text

# The characters escaping makes longer, whitespace of every kind, combining marks, joiners.
TEXT = st.text(st.sampled_from("ab&<>\"' \n\t\r\u2028é\u0301\u200d🤖"), max_size=300)


def assert_pieces_of(text: str, parts: list[str]) -> None:
    """``parts`` are ``text`` in order, with nothing left out but whitespace between them."""
    position = 0
    for part in parts:
        found = text.index(part, position)
        assert text[position:found].strip() == "", (text[position:found], part)
        position = found + len(part)
    assert text[position:].strip() == ""


def assert_deliverable(part: str, limit: int) -> None:
    """Our server takes ``part`` whole (typed length), the published one too (escaped)."""
    assert part and part == part.strip()
    assert len(part) <= limit
    assert len(html.escape(part)) <= limit


@given(TEXT, st.integers(6, 40))
def test_parts_are_deliverable_and_nothing_but_whitespace_is_lost(text: str,
                                                                  limit: int) -> None:
    """Every part fits both servers' rules; put together they are the text."""
    parts = split_text(text, limit)
    for part in parts:
        assert_deliverable(part, limit)
    assert_pieces_of(text, parts)


@given(TEXT, st.integers(6, 40))
def test_text_that_fits_is_one_part(text: str, limit: int) -> None:
    """Text within the limit once escaped is sent as it is, trimmed; blank text is nothing."""
    if len(html.escape(text.strip())) <= limit:
        assert split_text(text, limit) == ([text.strip()] if text.strip() else [])


@pytest.mark.parametrize(("text", "limit", "parts"), [
    ("aaaa\nbbbb\ncccc", 10, ["aaaa\nbbbb", "cccc"]),  # lines packed while they fit
    ("aa bb\ncc dd ee", 10, ["aa bb", "cc dd ee"]),  # a line break before a space
    ("aaaa bbbb cccc dddd", 10, ["aaaa bbbb", "cccc dddd"]),  # spaces when no line fits
    ("x" * 25, 10, ["x" * 10, "x" * 10, "x" * 5]),  # anywhere when there is no space
    ("&" * 5, 10, ["&&", "&&", "&"]),  # "&amp;": five characters each once escaped
    ("''", 10, ["'", "'"]),  # "&#x27;": six
    ("a" + "e\u0301" * 6, 10, ["a" + "e\u0301" * 4, "e\u0301" * 2]),  # é stays whole
    ("x" * 6 + "👩\u200d👩", 8, ["x" * 6, "👩\u200d👩"]),  # nor a joined emoji
    ("  \n\t ", 10, []),
])
def test_where_text_is_split(text: str, limit: int, parts: list[str]) -> None:
    """Line breaks first, then spaces, then anywhere but inside a character."""
    assert split_text(text, limit) == parts


def test_the_message_limit_is_1000_typed_characters() -> None:
    """1,200 ``&`` go out as six parts of 200, each 1000 characters once escaped."""
    assert MAX_MESSAGE_LENGTH == 1000
    assert split_text("&" * 1200) == ["&" * 200] * 6
    assert split_text("a" * 1103) == ["a" * 1000, "a" * 103]


def test_a_limit_too_small_for_one_escaped_character_is_refused() -> None:
    """``'`` escapes to six characters: a smaller limit could never send it."""
    with pytest.raises(ValueError, match="limit must be at least 6 characters, got 5"):
        split_text("hello", 5)
