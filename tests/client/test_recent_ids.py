"""``RecentIds``: a message seen again is recognised, and memory stays bounded."""

from __future__ import annotations

import pytest

from roomz.recent_ids import RecentIds


def test_an_id_is_known_until_size_newer_ones_came() -> None:
    """Each id is remembered with its value; the one remembered longest ago goes first."""
    recent: RecentIds[str] = RecentIds(3)
    for message_id in ("a", "b", "c"):
        recent.remember(message_id, message_id.upper())
    assert "a" in recent and recent.get("a") == "A"
    recent.remember("d")
    assert "a" not in recent and recent.get("a") is None
    assert [m in recent for m in "bcd"] == [True, True, True]
    assert len(recent) == 3


def test_remembering_again_makes_an_id_the_most_recent() -> None:
    """An id remembered again is kept longer than the ids that came after it first."""
    recent: RecentIds[None] = RecentIds(2)
    recent.remember("a")
    recent.remember("b")
    recent.remember("a")
    recent.remember("c")
    assert "a" in recent and "b" not in recent


def test_a_size_below_one_is_refused() -> None:
    """A cache that could hold nothing is a mistake, said as such."""
    with pytest.raises(ValueError, match="size must be at least 1, got 0"):
        RecentIds(0)
