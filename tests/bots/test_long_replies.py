"""A reply longer than a message arrives whole, in parts and in order, on either server.

Our server refuses a message over 1000 typed characters; the published one counts the
escaped form (``&`` costs five) and cuts it. A bot's parts pass both.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from roomz_bots import Message
from roomz_bots.testing import BotHarness
from tests.interop.published_server import PublishedServer

from .conftest import BotFactory
from .helpers import assert_no_reply, wait_until
from .sample_plugins import long_reply
from .sample_plugins.long_reply import long_text

LENGTH = 2500
WORD = re.compile(r"a<\d{3}>&b")
#: One long line (split at spaces), or a line break after every 12 words (split at those).
LAYOUTS = pytest.mark.parametrize("words_a_line", [0, 12], ids=["one-line", "lines"])


def assert_whole_and_in_order(parts: list[Message], text: str) -> None:
    """The parts are ``text``, split between words, none cut by a server."""
    assert len(text) == LENGTH and sum(text.count(c) for c in "&<>") > LENGTH // 4
    assert 3 <= len(parts) <= 8, [len(p.text) for p in parts]
    assert " ".join(p.text for p in parts).split() == text.split()
    for part in parts:
        assert len(part.text) <= 1000 and len(part.raw["content"]) <= 1000
        assert part.raw["content"] == html.escape(part.text)  # no entity cut in half
        *whole, last = part.text.split()
        assert all(WORD.fullmatch(word) for word in whole), part.text  # split between words
        assert WORD.fullmatch(last) or part is parts[-1], part.text


def words_in(parts: list[Message]) -> int:
    """How many words the parts seen so far hold."""
    return sum(len(p.text.split()) for p in parts)


@LAYOUTS
async def test_a_long_reply_arrives_whole_on_our_server(words_a_line: int) -> None:
    """2,500 characters, a third of them ``&``, ``<`` or ``>``: parts of at most 1000 characters,
    each accepted, split between words, that put together are the reply."""
    async with BotHarness([long_reply]) as chat:
        await chat.say(f"!long {LENGTH} {words_a_line}")
        text = long_text(LENGTH, words_a_line)
        parts: list[Message] = []
        while words_in(parts) < len(text.split()):
            parts.append(await chat.reply())
        await assert_no_reply(chat)
    assert_whole_and_in_order(parts, text)


@LAYOUTS
async def test_a_long_reply_arrives_whole_on_the_published_server(
        published_python: Path, make_bot: BotFactory, watchers: Callable[..., Any],
        words_a_line: int) -> None:
    """The published server cuts at 1000 escaped characters: a bot's parts stay under it."""
    email = "tester@example.com"
    async with PublishedServer(published_python, allowed_emails=[email]) as published:
        url = published.localhost_url
        await make_bot("long", url, (await published.request_link(email)).token, [long_reply],
                       display_name="LongBot")
        user = await watchers(url, (await published.request_link(email)).token)

        def parts() -> list[Message]:
            return [m for _, m in user.seen if m.display_name == "LongBot"]

        await user.client.send(f"!long {LENGTH} {words_a_line}")
        text = long_text(LENGTH, words_a_line)
        await wait_until(lambda: words_in(parts()) >= len(text.split()),
                         what=lambda: f"the whole reply; saw {user.texts!r}")
        assert_whole_and_in_order(parts(), text)
        await user.client.disconnect()
