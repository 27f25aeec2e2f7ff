"""A user's channel: the room all of a user's connections share, on every node."""

from __future__ import annotations


def channel_of(email: str) -> str:
    """The private channel of the user ``email``, shared by all their connections; also
    their user id."""
    return f"user:{email}"
