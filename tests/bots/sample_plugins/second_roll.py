"""A second ``!roll`` (and ``!r``), as a plugin author may write without knowing dice has one."""

from __future__ import annotations

from roomz_bots import command


@command(aliases=["r"])
def roll() -> str:
    """Roll the other way."""
    return "the second roll"
