"""A picture of the terminal: pyte's screen (what roomz-cli drew) painted to a PNG by Pillow,
cell by cell, with its colours, bold and reverse video, in DejaVu Sans Mono."""

from __future__ import annotations

from pathlib import Path

import pyte
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
BACKGROUND = (24, 24, 27)
FOREGROUND = (220, 220, 220)
#: The 16 ANSI colours by pyte's names (a dark terminal theme).
NAMED = {
    "black": (40, 40, 40), "red": (224, 108, 117), "green": (152, 195, 121),
    "brown": (229, 192, 123), "yellow": (229, 192, 123), "blue": (97, 175, 239),
    "magenta": (198, 120, 221), "cyan": (86, 182, 194), "white": (220, 220, 220),
    "brightblack": (110, 110, 110), "brightred": (240, 130, 140),
    "brightgreen": (170, 215, 140), "brightyellow": (240, 210, 140),
    "brightblue": (120, 190, 250), "brightmagenta": (215, 140, 235),
    "brightcyan": (110, 200, 210), "brightwhite": (255, 255, 255),
}


def colour(name: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """An RGB colour from pyte's name for it: a named ANSI colour or six hex digits."""
    if name in NAMED:
        return NAMED[name]
    if len(name) == 6:
        try:
            return (int(name[0:2], 16), int(name[2:4], 16), int(name[4:6], 16))
        except ValueError:
            pass
    return default


def save_png(screen: pyte.Screen, path: Path) -> None:
    """Paint ``screen`` to ``path`` (a PNG), creating its folder."""
    regular, bold = ImageFont.truetype(FONT, SIZE), ImageFont.truetype(BOLD, SIZE)
    left, top, right, bottom = regular.getbbox("M")
    width, height = right - left + 1, SIZE + 4
    image = Image.new("RGB", (screen.columns * width + 16, screen.lines * height + 16),
                      BACKGROUND)
    draw = ImageDraw.Draw(image)
    for row in range(screen.lines):
        line = screen.buffer[row]
        for column in range(screen.columns):
            char = line[column]
            fg = colour(char.fg, FOREGROUND)
            bg = colour(char.bg, BACKGROUND)
            if char.reverse:
                fg, bg = bg, fg
            x, y = 8 + column * width, 8 + row * height
            if bg != BACKGROUND:
                draw.rectangle([x, y, x + width, y + height], fill=bg)
            if char.data.strip():
                draw.text((x, y), char.data, font=bold if char.bold else regular, fill=fg)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A few dozen colours are all a terminal shows: a palette keeps the PNG small.
    image.quantize(colors=64).save(path, optimize=True)
