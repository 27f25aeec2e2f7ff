"""Its shutdown hook waits until the test lets it go: something can happen while the bot
stops."""

import asyncio

from roomz_bots import PluginBot, hookimpl

#: Set when the shutdown hook starts; the hook returns once ``RELEASE`` is set.
STOPPING = asyncio.Event()
RELEASE = asyncio.Event()


def reset() -> None:
    """Fresh events, for a test of its own."""
    global STOPPING, RELEASE
    STOPPING, RELEASE = asyncio.Event(), asyncio.Event()


@hookimpl
async def shutdown(bot: PluginBot) -> None:
    STOPPING.set()
    await asyncio.wait_for(RELEASE.wait(), 5)
