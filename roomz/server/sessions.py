"""Session tokens (the HS256 JWT carried in the ``session_token`` cookie), and their end."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

from .session_records import SessionRecords

COOKIE_NAME = "session_token"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "email", "iat", "exp", "channel_token"]


class SessionError(Exception):
    """A session token was missing, malformed, expired, revoked or not allowed."""


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session as a connection remembers it: enough to tell later that it ended."""

    id: str  # the token's random ``channel_token`` claim
    email: str
    version: int
    expires_at: int  # Unix time

    @classmethod
    def of(cls, claims: dict[str, Any]) -> Session:
        """The session of a verified token's ``claims``."""
        return cls(id=claims["channel_token"], email=claims["email"],
                   version=claims.get("ver", 1), expires_at=int(claims["exp"]))


#: Told the email of a user one of whose sessions was just ended on this node.
SessionWatcher = Callable[[str], Awaitable[object]]


class Sessions:
    """Issue and check session tokens; ended sessions are kept in :class:`SessionRecords`.

    Logging out ends one session (its id is revoked until the token expires); revoking a
    user ends all of their sessions so far (the user moves to a new version).
    """

    def __init__(self, secret: str, expiry_days: int, records: SessionRecords) -> None:
        self._secret = secret
        self.max_age_seconds = expiry_days * 86400
        self.records = records
        self._watchers: list[SessionWatcher] = []

    def watch(self, watcher: SessionWatcher) -> None:
        """Have ``watcher(email)`` awaited whenever a session of ``email`` is ended here."""
        self._watchers.append(watcher)

    async def revoke(self, email: str) -> None:
        """End every session token issued to ``email`` so far."""
        await self.records.end_all(email)
        await self._ended(email)

    async def end(self, session: Session) -> None:
        """End this one session (logging out), remembered until its token would expire."""
        await self.records.revoke(session.id, session.expires_at)
        await self._ended(session.email)

    async def _ended(self, email: str) -> None:
        for watcher in self._watchers:
            await watcher(email)

    async def issue(self, email: str) -> str:
        """A new session token for ``email``."""
        now = datetime.now(timezone.utc)
        claims = {
            "sub": f"user:{email}",
            "email": email,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.max_age_seconds)).timestamp()),
            "channel_token": secrets.token_urlsafe(32),
            "ver": (await self.records.standing((), (email,))).version(email),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    async def verify(self, token: str | None) -> dict[str, Any]:
        """Return the token's claims, or raise :class:`SessionError` saying why not."""
        if not token:
            raise SessionError("no session cookie; sign in first")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
            )
        except jwt.ExpiredSignatureError:
            raise SessionError("session expired; sign in again") from None
        except jwt.InvalidTokenError:
            raise SessionError("session invalid; sign in again") from None
        email, session_id = claims["email"], claims["channel_token"]
        if not isinstance(email, str) or claims["sub"] != f"user:{email}" \
                or not isinstance(session_id, str) or not session_id:
            raise SessionError("session invalid; sign in again")
        standing = await self.records.standing((session_id,), (email,))
        if session_id in standing.revoked:
            raise SessionError("session ended; sign in again")
        if claims.get("ver", 1) != standing.version(email):
            raise SessionError("session revoked; sign in again")
        return claims

    async def ended(self, sessions: Collection[Session]) -> dict[str, str]:
        """Of ``sessions``, the ids of those that have ended, each with why (one look-up)."""
        standing = await self.records.standing({s.id for s in sessions},
                                               {s.email for s in sessions})
        now = time.time()
        reasons: dict[str, str] = {}
        for session in sessions:
            if session.id in standing.revoked:
                reasons[session.id] = "logged out"
            elif session.version != standing.version(session.email):
                reasons[session.id] = "all sessions of this user were ended"
            elif session.expires_at <= now:
                reasons[session.id] = "expired"
        return reasons


def cookie_value(cookie_header: str | None) -> str | None:
    """The ``session_token`` value in a raw Cookie header, tolerant of malformed pairs.

    Of several, the first: browsers send the most specific cookie first, and the published
    server reads it so. Every endpoint reads the session through here, so all agree.
    """
    if not cookie_header:
        return None
    for pair in cookie_header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name == COOKIE_NAME:
            return value.strip().strip('"') or None
    return None
