"""Dice: ``!roll [NdM]`` rolls N dice with M sides (one six-sided die by default)."""

import random
import re
import reprlib
from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta

from roomz_bots import PluginBot, UsageError, command

SPEC = re.compile(r"^([0-9]{0,6})d([0-9]{1,9})$", re.IGNORECASE)


@dataclass
class Settings:
    """``[plugins.dice]`` in the config; ``Meta`` bounds a value (the config names a wrong one)."""

    max_dice: Annotated[int, Meta(ge=1)] = 20
    max_sides: Annotated[int, Meta(ge=2)] = 1000


@command(aliases=["r"], usage="roll [NdM]")
def roll(bot: PluginBot, spec: str = "1d6") -> str:
    """Roll dice: 2d6 is two six-sided dice."""
    match = SPEC.match(spec)
    if not match:
        raise UsageError(f"{reprlib.repr(spec)} is not like 2d6")  # cut short if long
    count, sides = int(match.group(1) or 1), int(match.group(2))
    limits = bot.settings
    if not 1 <= count <= limits.max_dice or not 2 <= sides <= limits.max_sides:
        raise UsageError(f"1-{limits.max_dice} dice of 2-{limits.max_sides} sides")
    rolls = [random.randint(1, sides) for _ in range(count)]
    shown = " + ".join(map(str, rolls)) + f" = {sum(rolls)}" if count > 1 else str(rolls[0])
    return f"🎲 {spec}: {shown}"
