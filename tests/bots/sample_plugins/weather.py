"""Declares settings: one required, two with defaults."""

from dataclasses import dataclass

from roomz_bots import PluginBot, command


@dataclass
class Settings:
    """``[plugins.weather]``."""

    city: str
    units: str = "metric"
    days: int = 3


@command
def forecast(bot: PluginBot) -> str:
    """The configured forecast."""
    s = bot.settings
    return f"{s.days} days of {s.units} weather in {s.city}"
