"""The server's JSON on the wire (msgspec, the standard library for what msgspec refuses)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engineio import json as standard_json

from roomz.server import wire_json
from roomz.server.local import LocalServer

from .helpers import signed_in

ALICE = "alice@example.com"
PAYLOADS: list[Any] = [
    {"id": "5d0c", "user": {"id": "user:a@example.com", "email": "a@example.com",
                            "display_name": None}, "content": "héllo 😀 &lt;b&gt; \"q\" \\ \n\t",
     "timestamp": "2026-12-01T20:00:00+00:00", "total_connections": 3},
    ["message", {"content": "x" * 2000}],
    {"nested": [[1, 2.5, -3], {"t": True, "f": False}], "empty": {}, "big": 10**30},
    "\ud800 a lone surrogate",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_what_is_sent_reads_back_as_the_same_objects(payload: Any) -> None:
    """Every payload, lone surrogates included, is compact JSON that reads back the same."""
    text = wire_json.dumps(payload, separators=(",", ":"))
    assert json.loads(text) == payload
    assert wire_json.loads(text) == payload
    assert text in {json.dumps(payload, ensure_ascii=ascii_only, separators=(",", ":"))
                    for ascii_only in (False, True)}  # compact; UTF-8 unless msgspec refused


@pytest.mark.parametrize("text", [
    "NaN", "[Infinity, -Infinity]", "1e999", '"\\ud800"', '{"a": 1, "a": 2}', "1" * 100,
])
def test_what_msgspec_refuses_is_read_as_the_standard_library_reads_it(text: str) -> None:
    """Inputs msgspec refuses but the standard library takes give the same objects."""
    expected = standard_json.loads(text)
    got = wire_json.loads(text)
    assert repr(got) == repr(expected)


@pytest.mark.parametrize("text", ["", "[1,", '{"a" 1}', "[1] x", "'a'", "1" * 5000])
def test_junk_is_refused_with_value_error(text: str) -> None:
    """Junk raises ``ValueError``, which the packet checks turn into a closed connection."""
    with pytest.raises(ValueError):
        wire_json.loads(text)


def test_very_deep_nesting_is_refused_with_recursion_error() -> None:
    with pytest.raises(RecursionError):
        wire_json.loads("[" * 100_000 + "]" * 100_000)


async def test_unusual_text_reaches_the_other_connection_as_sent(server: LocalServer) -> None:
    """Emoji, accents and a lone surrogate (which msgspec cannot encode) go out escaped for
    HTML, exactly as typed otherwise, to every connection of the user."""
    token = await server.sign_in(ALICE)
    content = "Grüße 😀 <b>&</b> \ud800 end"
    async with signed_in(server.url, token) as sender, signed_in(server.url, token) as other:
        ack = await sender.send(content)
        assert ack["status"] == "ok"
        delivered = await other.wait_for("message", lambda d: d["id"] == ack["message_id"])
        assert delivered["content"] == "Grüße 😀 &lt;b&gt;&amp;&lt;/b&gt; \ud800 end"
