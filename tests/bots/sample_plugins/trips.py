"""Declares settings of every kind a plugin author may use: lists, nested dataclasses,
``Literal``, ``Enum``, ``Optional`` and defaults."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from roomz_bots import PluginBot, command


class Units(enum.Enum):
    """How distances are given."""

    METRIC = "metric"
    IMPERIAL = "imperial"


@dataclass
class Stop:
    """A ``[[plugins.trips.stops]]`` table."""

    city: str
    nights: int = 1


@dataclass
class Settings:
    """``[plugins.trips]``."""

    stops: list[Stop]
    home: Stop = field(default_factory=lambda: Stop("Oslo"))
    tags: list[str] = field(default_factory=list)
    pace: Literal["slow", "fast"] = "slow"
    units: Units = Units.METRIC
    budget: float | None = None


@command
def trip(bot: PluginBot) -> str:
    """The configured trip."""
    s: Settings = bot.settings
    stops = ", ".join(f"{stop.city} ({stop.nights})" for stop in s.stops)
    return f"from {s.home.city}: {stops}; {s.pace}, {s.units.value}"
