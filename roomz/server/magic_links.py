"""Magic links: single-use sign-in tokens, stored only as SHA-256 hashes, with the sign-in that
waits for them.

Each link also carries a *sign-in*: a secret id that only the client which asked for the
link learns, and a short code it shows its person. Opening the link in a browser and
entering that code approves the sign-in, and the waiting client then collects a session
(docs/protocol.md, "Signing in by confirming the link"). A link is used once, whichever way:
by a client redeeming its token, by "Sign in here" in a browser, by the right code, or by
too many wrong codes. Its record stays a little longer than the link lives, so that the
waiting client can be told what became of it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

#: The letters of sign-in codes: no vowels (no words), none that look alike (RFC 8628 §6.1).
CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"
CODE_LENGTH = 8
#: After this many wrong codes the link no longer works.
MAX_WRONG_CODES = 5
#: A client that polled this recently counts as waiting: the page offers to sign it in.
WAITING_SECONDS = 60.0
#: How long a record outlives its link: enough to tell a late poll what became of it.
AFTERLIFE_SECONDS = 120.0

_SEPARATORS = re.compile(r"[\s\-]+")


def token_hash(token: str) -> str:
    """The form a magic-link token (or a sign-in id) is stored and looked up in."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_code() -> str:
    """A fresh sign-in code: 8 random letters of :data:`CODE_LETTERS`, without the hyphen."""
    return "".join(secrets.choice(CODE_LETTERS) for _ in range(CODE_LENGTH))


def show_code(code: str) -> str:
    """The code as people see it, in two halves: ``WDJBMJHT`` -> ``WDJB-MJHT``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def typed_code(text: str) -> str:
    """What a person typed, in the form codes are compared in: no case, hyphens or spaces."""
    return _SEPARATORS.sub("", text).upper()


def same_code(typed: str, code: str) -> bool:
    """True when ``typed`` (as a person typed it) is ``code``."""
    return hmac.compare_digest(typed_code(typed).encode("utf-8", "replace"),
                               code.encode("ascii"))


class Status(str, Enum):
    """Where a sign-in stands; the first six are kept in the store, the rest are answers."""

    PENDING = "pending"  # nobody has used the link yet
    APPROVED = "approved"  # the right code was entered; the client has yet to collect it
    TERMINAL = "terminal"  # the waiting client collected its session
    BROWSER = "browser"  # "Sign in here": a browser got the session
    TOKEN = "token"  # a client redeemed the token with a plain GET (``/token``)
    TOO_MANY_CODES = "too-many-codes"  # used up by wrong codes
    EXPIRED = "expired"  # nobody used it in time
    UNKNOWN = "unknown"  # no such sign-in (or gone long ago)
    SLOW_DOWN = "slow-down"  # polled again too soon; not recorded


@dataclass(frozen=True)
class NewLink:
    """A link just made: the token for the mail, the sign-in id and code for the client."""

    token: str
    sign_in_id: str
    code: str  # the 8 letters, without the hyphen: :func:`show_code` shows it


@dataclass(frozen=True)
class OpenLink:
    """A link nobody has used yet, as the page shows it."""

    email: str
    client_waiting: bool  # a client polled for it in the last :data:`WAITING_SECONDS`


class Confirmation(Enum):
    """What entering a code on the page did."""

    APPROVED = "approved"
    WRONG = "wrong"
    TOO_MANY = "too-many"  # that wrong code was the last one allowed: the link is used up
    GONE = "gone"  # unknown, expired or already used


@dataclass(frozen=True)
class Confirmed:
    """The outcome of a code, with the link's email and the tries left after a wrong one."""

    outcome: Confirmation
    email: str = ""
    tries_left: int = 0


@dataclass(frozen=True)
class Polled:
    """The answer to a poll: the status, and with :attr:`Status.APPROVED` the email."""

    status: Status
    email: str = ""


class MagicLinkStore(Protocol):
    """Where pending magic links live: this process (:class:`MagicLinks`) or Redis."""

    lifetime_seconds: float

    async def create(self, email: str) -> NewLink:
        """Make a link (and its sign-in) for ``email``."""

    async def peek(self, token: str) -> OpenLink | None:
        """The link of ``token`` if nobody has used it and it has not expired; uses nothing."""

    async def redeem(self, token: str, by: Status = Status.TOKEN) -> str | None:
        """Use up ``token`` (``by`` is :attr:`Status.TOKEN` or :attr:`Status.BROWSER`) and
        return its email; None when unknown, used or expired."""

    async def confirm(self, token: str, code: str) -> Confirmed:
        """Check a code typed on the page for ``token``'s sign-in; the right one approves it."""

    async def poll(self, sign_in_id: str, min_gap: float) -> Polled:
        """Where the sign-in ``sign_in_id`` stands; a pending one notes that its client waits.
        A poll less than ``min_gap`` seconds after the last one answers SLOW_DOWN."""

    async def collect(self, sign_in_id: str) -> bool:
        """Mark an approved sign-in as collected: True once, for the poll that delivers it."""


@dataclass
class _Link:
    email: str
    sign_in: str  # the hash of the sign-in id
    code: str
    expires_at: float
    status: Status = Status.PENDING
    wrong_codes: int = 0
    polled_at: float | None = None

    def is_open(self, now: float) -> bool:
        return self.status is Status.PENDING and now < self.expires_at


class MagicLinks:
    """In-memory store of magic links and their sign-ins: create, use once, expire.

    Methods are coroutines so a shared store (Redis) can stand in for it.
    """

    def __init__(self, lifetime_seconds: float) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._links: dict[str, _Link] = {}  # by token hash
        self._sign_ins: dict[str, str] = {}  # sign-in id hash -> token hash

    async def create(self, email: str) -> NewLink:
        """Make a new link for ``email``; its token and sign-in id are never stored."""
        link = NewLink(secrets.token_urlsafe(32), secrets.token_urlsafe(32), new_code())
        key = token_hash(link.token)
        self._links[key] = _Link(email, token_hash(link.sign_in_id), link.code,
                                 time.monotonic() + self.lifetime_seconds)
        self._sign_ins[token_hash(link.sign_in_id)] = key
        return link

    async def peek(self, token: str) -> OpenLink | None:
        """The open link of ``token``, or None; a GET of the page uses nothing."""
        now = time.monotonic()
        link = self._links.get(token_hash(token))
        if link is None or not link.is_open(now):
            return None
        waiting = link.polled_at is not None and now - link.polled_at < WAITING_SECONDS
        return OpenLink(link.email, waiting)

    async def redeem(self, token: str, by: Status = Status.TOKEN) -> str | None:
        """Use up ``token`` and return its email; None when unknown, used or expired."""
        link = self._links.get(token_hash(token))
        if link is None or not link.is_open(time.monotonic()):
            return None
        link.status = by
        return link.email

    async def confirm(self, token: str, code: str) -> Confirmed:
        """Approve the sign-in when ``code`` is its code; count a wrong one."""
        link = self._links.get(token_hash(token))
        if link is None or not link.is_open(time.monotonic()):
            return Confirmed(Confirmation.GONE)
        if same_code(code, link.code):
            link.status = Status.APPROVED
            return Confirmed(Confirmation.APPROVED, link.email)
        link.wrong_codes += 1
        if link.wrong_codes >= MAX_WRONG_CODES:
            link.status = Status.TOO_MANY_CODES
            return Confirmed(Confirmation.TOO_MANY, link.email)
        return Confirmed(Confirmation.WRONG, link.email, MAX_WRONG_CODES - link.wrong_codes)

    async def poll(self, sign_in_id: str, min_gap: float) -> Polled:
        """Where the sign-in stands; a pending one records when its client last asked."""
        now = time.monotonic()
        link = self._link_of(sign_in_id)
        if link is None:
            return Polled(Status.UNKNOWN)
        if link.status is Status.APPROVED:
            return Polled(Status.APPROVED, link.email)
        if link.status is not Status.PENDING:
            return Polled(link.status)
        if now >= link.expires_at:
            return Polled(Status.EXPIRED)
        if link.polled_at is not None and now - link.polled_at < min_gap:
            return Polled(Status.SLOW_DOWN)
        link.polled_at = now
        return Polled(Status.PENDING)

    async def collect(self, sign_in_id: str) -> bool:
        """Approved -> collected, once."""
        link = self._link_of(sign_in_id)
        if link is None or link.status is not Status.APPROVED:
            return False
        link.status = Status.TERMINAL
        return True

    def _link_of(self, sign_in_id: str) -> _Link | None:
        key = self._sign_ins.get(token_hash(sign_in_id))
        link = self._links.get(key) if key is not None else None
        if link is None or time.monotonic() >= link.expires_at + AFTERLIFE_SECONDS:
            return None
        return link

    async def remove_expired(self) -> int:
        """Forget links whose records have outlived them; returns how many were removed."""
        cutoff = time.monotonic() - AFTERLIFE_SECONDS
        expired = [h for h, link in self._links.items() if link.expires_at < cutoff]
        for h in expired:
            del self._sign_ins[self._links.pop(h).sign_in]
        return len(expired)

    def __len__(self) -> int:
        return len(self._links)
