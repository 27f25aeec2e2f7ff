"""Said once: the ``send_once`` extension's names, shared by the client, server and bots.

A message may carry a ``key`` its sender chose; a server that names :data:`SEND_ONCE` in
``authenticated.features`` delivers a message with a key it already kept only once, and
answers a send again with the first one's acknowledgement, marked ``duplicate``
(docs/protocol.md 3.5).
"""

from __future__ import annotations

from typing import Any

#: The feature a server names when it says a keyed message once.
SEND_ONCE = "send_once"
#: A key is a string of 1 to this many characters (a UUID is 36).
MAX_KEY_LENGTH = 100


def is_key(value: Any) -> bool:
    """True when ``value`` may be a message's ``key``."""
    return isinstance(value, str) and 0 < len(value) <= MAX_KEY_LENGTH
