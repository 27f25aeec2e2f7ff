"""A sign-in that waits for its link to be confirmed in a browser: the ``sign_in`` extension of
the answer to a link request (docs/protocol.md, "Signing in by confirming the link").
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

POLL_PATH = "/auth/sign-in/poll"
#: Bounds on what a server may ask for: no poll storm, no wait without end.
MIN_INTERVAL, MAX_INTERVAL = 1.0, 60.0
MAX_LIFETIME = 24 * 3600.0
#: A code is shown to people as it came: only letters, digits and hyphens, never escapes.
_CODE = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
MAX_CODE_LENGTH = 32
MAX_ID_LENGTH = 100


@dataclass(frozen=True)
class PendingSignIn:
    """What the server said about the link just requested: the secret id to poll with, the
    code to show, how often to poll, and when (``time.monotonic()``) the link expires."""

    id: str
    code: str
    interval: float
    expires_at: float

    @classmethod
    def from_answer(cls, body: Any) -> PendingSignIn | None:
        """The sign-in of a link request's JSON answer; None when the server did not offer
        one (the published server) or offered one that is malformed."""
        offer = body.get("sign_in") if isinstance(body, dict) else None
        if not isinstance(offer, dict):
            return None
        sign_in_id, code = offer.get("id"), offer.get("code")
        interval, expires_in = _number(offer.get("interval")), _number(offer.get("expires_in"))
        if not (isinstance(sign_in_id, str) and 0 < len(sign_in_id) <= MAX_ID_LENGTH
                and isinstance(code, str) and len(code) <= MAX_CODE_LENGTH
                and _CODE.fullmatch(code) and interval is not None and expires_in is not None):
            return None
        return cls(sign_in_id, code, min(max(interval, MIN_INTERVAL), MAX_INTERVAL),
                   time.monotonic() + min(max(expires_in, 0.0), MAX_LIFETIME))

    @property
    def expired(self) -> bool:
        """True once the link's lifetime has passed."""
        return time.monotonic() >= self.expires_at


def _number(value: object) -> float | None:
    """``value`` as a float when it is a JSON number (not a bool, not NaN), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    return None
