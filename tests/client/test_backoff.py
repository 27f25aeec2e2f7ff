"""``Backoff``: first, 2x, 4x ... up to the cap, each wait jittered by ±25% and never over it."""

from __future__ import annotations

import pytest

from roomz.backoff import Backoff


def waits(backoff: Backoff, count: int) -> list[float]:
    """The next ``count`` waits of ``backoff``."""
    return [backoff.next_delay() for _ in range(count)]


def test_waits_double_up_to_the_cap() -> None:
    """Without jitter (its middle): 1, 2, 4, 8, then the 10 s cap for good."""
    backoff = Backoff(1.0, 10.0, uniform=lambda low, high: (low + high) / 2)
    assert waits(backoff, 7) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_jitter_is_a_quarter_either_way_and_the_cap_holds() -> None:
    """At the jitter's ends: 75% and 125% of each wait, but never more than the cap."""
    low = Backoff(0.2, 1.0, uniform=lambda low, high: low)
    high = Backoff(0.2, 1.0, uniform=lambda low, high: high)
    assert waits(low, 5) == pytest.approx([0.15, 0.3, 0.6, 0.75, 0.75])
    assert waits(high, 5) == pytest.approx([0.25, 0.5, 1.0, 1.0, 1.0])


def test_real_jitter_stays_within_its_bounds() -> None:
    """With the random jitter, every wait lies within ±25% of its nominal length."""
    for _ in range(200):
        first, second, third = waits(Backoff(1.0, 3.0), 3)
        assert 0.75 <= first <= 1.25 and 1.5 <= second <= 2.5 and 2.25 <= third <= 3.0


def test_reset_starts_over() -> None:
    """After reset(), the next wait is the first one again."""
    backoff = Backoff(0.5, 60.0, uniform=lambda low, high: 1.0)
    assert waits(backoff, 4) == [0.5, 1.0, 2.0, 4.0]
    backoff.reset()
    assert waits(backoff, 2) == [0.5, 1.0]


@pytest.mark.parametrize(("first", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_backoff_that_cannot_work_is_a_value_error(first: float, cap: float) -> None:
    """A first wait that is not positive, or a cap below it, names both values."""
    with pytest.raises(ValueError, match=f"first={first!r}, cap={cap!r}"):
        Backoff(first, cap)
