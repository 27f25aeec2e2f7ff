"""Session tokens: the stateless HS256 JWT carried in the ``session_token`` cookie."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import jwt

COOKIE_NAME = "session_token"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "email", "iat", "exp", "channel_token"]


class SessionError(Exception):
    """A session token was missing, malformed, expired, revoked or not allowed."""


class VersionStore(Protocol):
    """Each user's session version: in this process (:class:`Versions`) or in Redis."""

    async def get(self, email: str) -> int: ...
    async def bump(self, email: str) -> None: ...


class Versions:
    """Each user's session version, in memory; revoking bumps it. Redis has its own."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}

    async def get(self, email: str) -> int:
        """The version a valid session of ``email`` must carry."""
        return self._versions.get(email, 1)

    async def bump(self, email: str) -> None:
        """Move ``email`` to a new version."""
        self._versions[email] = self._versions.get(email, 1) + 1


class Sessions:
    """Issue and check session tokens; a user's tokens are revoked by bumping their version."""

    def __init__(self, secret: str, expiry_days: int,
                 versions: VersionStore) -> None:
        self._secret = secret
        self.max_age_seconds = expiry_days * 86400
        self.versions = versions

    async def revoke(self, email: str) -> None:
        """Invalidate every session token issued to ``email`` so far."""
        await self.versions.bump(email)

    async def issue(self, email: str) -> str:
        """A new session token for ``email``."""
        now = datetime.now(timezone.utc)
        claims = {
            "sub": f"user:{email}",
            "email": email,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.max_age_seconds)).timestamp()),
            "channel_token": secrets.token_urlsafe(32),
            "ver": await self.versions.get(email),
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
        email = claims["email"]
        if not isinstance(email, str) or claims["sub"] != f"user:{email}":
            raise SessionError("session invalid; sign in again")
        if claims.get("ver", 1) != await self.versions.get(email):
            raise SessionError("session revoked; sign in again")
        return claims


def cookie_value(cookie_header: str | None) -> str | None:
    """The ``session_token`` value in a raw Cookie header, tolerant of malformed pairs."""
    if not cookie_header:
        return None
    for pair in cookie_header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name == COOKIE_NAME:
            return value.strip().strip('"') or None
    return None
