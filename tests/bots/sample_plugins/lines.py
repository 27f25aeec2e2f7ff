"""Answers with many lines: a reply long enough to go out in several messages."""

from roomz_bots import command


@command
def lines(n: int) -> str:
    """n numbered lines of 100 characters each: 10 fit in one message."""
    return "\n".join(f"line {i:03} " + "x" * 90 for i in range(1, n + 1))
