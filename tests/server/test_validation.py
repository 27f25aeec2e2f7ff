"""Message content on its own: trimmed, escaped, never cut; over 1000 typed characters refused."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from roomz.server.validation import clean_content, content_too_long

PADDING = st.text(st.sampled_from(" \n\t"), max_size=3)
# Text heavy in the characters html.escape rewrites, short or right around the limit.
ESCAPABLE = st.one_of(
    st.text(st.sampled_from("&<>\"' \n\taé🤖"), max_size=200),
    st.builds(lambda pad, char, count, tail: pad + char * count + tail,
              PADDING, st.sampled_from("&<'aé"), st.integers(995, 1005), PADDING),
)


@given(ESCAPABLE)
def test_content_is_trimmed_and_escaped_whole(text: str) -> None:
    """``clean_content`` trims and escapes and nothing else: no entity split, nothing cut."""
    cleaned = clean_content(text)
    assert cleaned == html.escape(text.strip())
    assert html.unescape(cleaned) == text.strip()


@given(ESCAPABLE)
def test_the_limit_counts_typed_characters_after_trimming(text: str) -> None:
    """Over 1000 typed characters (after trimming) is refused, naming both numbers."""
    length = len(text.strip())
    expected = (None if length <= 1000
                else f"Message too long: {length} characters, at most 1000")
    assert content_too_long(text) == expected


def test_the_reported_findings() -> None:
    """1,200 ``&`` and a 1,103-character line are refused; 1000 ``&`` padded with spaces fit."""
    assert content_too_long("&" * 1200) == "Message too long: 1200 characters, at most 1000"
    assert content_too_long("a" * 1103) == "Message too long: 1103 characters, at most 1000"
    assert content_too_long("  " + "&" * 1000 + "\n") is None
    assert clean_content("  " + "&" * 1000 + "\n") == "&amp;" * 1000
