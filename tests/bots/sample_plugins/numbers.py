"""A command that returns a number, not text: a plugin author's slip."""

from __future__ import annotations

from roomz_bots import command


@command
def plus(a: int, b: int) -> int:
    """Add two whole numbers (and return the sum, not a line to say)."""
    return a + b
