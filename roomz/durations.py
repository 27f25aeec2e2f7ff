"""``duration``: how long, as people say it (``4 s``, ``1 min 23 s``, ``2 h 5 min``,
``7 days``), for whatever a person reads: log lines, the terminal, the bots' logs."""

from __future__ import annotations

from typing import NamedTuple


class Unit(NamedTuple):
    """A unit of time as written: ``day``/``days``, ``h``, ``min``, ``s``."""

    one: str
    several: str
    seconds: int

    def of(self, count: int) -> str:
        """``count`` of this unit: ``1 day``, ``3 days``, ``5 min``."""
        return f"{count} {self.one if count == 1 else self.several}"


#: Largest first.
UNITS = (Unit("day", "days", 86400), Unit("h", "h", 3600), Unit("min", "min", 60),
         Unit("s", "s", 1))


def duration(seconds: float) -> str:
    """``seconds``, rounded to the second, in the largest unit that counts and the one
    below it unless that is zero: ``0 s``, ``1 min 23 s``, ``2 h`` (for 2 h 0 min 9 s),
    ``1 day 2 h``."""
    whole = max(round(seconds), 0)
    for unit, smaller in zip(UNITS, UNITS[1:], strict=False):
        if whole >= unit.seconds:
            large, rest = divmod(whole, unit.seconds)
            small = rest // smaller.seconds
            return f"{unit.of(large)} {smaller.of(small)}" if small else unit.of(large)
    return UNITS[-1].of(whole)
