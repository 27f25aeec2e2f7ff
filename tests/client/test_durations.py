"""``duration``: how long, as the terminal, the bots' logs and the client's warnings say it."""

from __future__ import annotations

import pytest

from roomz.durations import duration


@pytest.mark.parametrize(("seconds", "said"), [
    (0.4, "0 s"), (4.4, "4 s"), (60, "1 min"), (83, "1 min 23 s"), (3600, "1 h"),
    (7530, "2 h 5 min"), (7 * 86400, "7 days"), (86400 + 2 * 3600 + 59, "1 day 2 h"),
    (2 * 86400 + 30 * 60, "2 days"),
])
def test_durations_read_like_a_person_says_them(seconds: float, said: str) -> None:
    """Seconds, minutes, hours, days: the largest unit that counts, and the one below it
    unless it is zero (``again, after 1 min 23 s away``, ``keeps the last 1000, for 7
    days``)."""
    assert duration(seconds) == said
