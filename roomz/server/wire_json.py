"""JSON on the wire and in the history: every Socket.IO packet the server sends or reads,
and every message it keeps, encoded by msgspec.

python-socketio encodes each packet with its ``json`` module, the standard library by
default (which also builds a decoder per packet read): about 4% of the server's CPU per
message at chat fan-out, in a profile. msgspec (already a dependency) does the same work
several times faster. Whatever msgspec will not
take goes to the standard library (python-engineio's ``json``), which decides as before.
Two differences, both harmless: text is sent as UTF-8 rather than ``\\u`` escapes, and
integers of 101 to 4300 digits are read (python-engineio refuses more than 100; msgspec,
like Python itself, more than 4300).
"""

from __future__ import annotations

from typing import Any

import msgspec
from engineio import json as standard_json

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def dumps(obj: Any, **options: Any) -> str:
    """``json.dumps`` for packets: compact JSON (``options`` apply only to the fallback)."""
    try:
        return _encode(obj).decode()
    except (TypeError, ValueError, OverflowError):  # lone surrogates, non-str keys, ...
        text: str = standard_json.dumps(obj, **options)
        return text


def loads(text: str | bytes, **options: Any) -> Any:
    """``json.loads`` for packets; ``ValueError`` (or ``RecursionError``) for junk, as ever."""
    try:
        return _decode(text)
    except (ValueError, RecursionError):  # NaN, lone surrogates, very deep nesting, junk
        return standard_json.loads(text, **options)
