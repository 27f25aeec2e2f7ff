"""Magic links: single-use sign-in tokens, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Protocol


def token_hash(token: str) -> str:
    """The form a magic-link token is stored and looked up in."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Link:
    email: str
    expires_at: float


class MagicLinkStore(Protocol):
    """Where pending magic links live: this process (:class:`MagicLinks`) or Redis."""

    async def create(self, email: str) -> str: ...
    async def redeem(self, token: str) -> str | None: ...


class MagicLinks:
    """In-memory store of pending magic links: create, redeem once, expire.

    Methods are coroutines so a shared store (Redis) can stand in for it.
    """

    def __init__(self, lifetime_seconds: float) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._links: dict[str, _Link] = {}

    async def create(self, email: str) -> str:
        """Make a new link for ``email`` and return its token (shown once, never stored)."""
        token = secrets.token_urlsafe(32)
        self._links[token_hash(token)] = _Link(email, time.monotonic() + self.lifetime_seconds)
        return token

    async def redeem(self, token: str) -> str | None:
        """Use up ``token`` and return its email; None when unknown, used or expired."""
        link = self._links.pop(token_hash(token), None)
        if link is None or link.expires_at < time.monotonic():
            return None
        return link.email

    async def remove_expired(self) -> int:
        """Forget expired links; returns how many were removed."""
        now = time.monotonic()
        expired = [h for h, link in self._links.items() if link.expires_at < now]
        for h in expired:
            del self._links[h]
        return len(expired)

    def __len__(self) -> int:
        return len(self._links)
