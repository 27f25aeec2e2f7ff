"""A command that lets one cancel pass, as ``asyncio.wait_for`` does before Python 3.12 when
what it waits for arrives with the cancel (CPython gh-86296): python-socketio's ``call()``,
under ``bot.ask``, does it when the question's acknowledgement comes in as the bot stops."""

import asyncio

from roomz_bots import command

from . import JOURNAL

NAME = "stubborn"


@command
async def linger() -> str:
    """Wait an hour, letting the first cancel pass."""
    JOURNAL.record(NAME, "linger started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        JOURNAL.record(NAME, "first cancel let pass")
    await asyncio.sleep(3600)
    return "still here"
