"""Asks before it deploys, and polls: acts on answers that come after a restart too."""

import asyncio
from collections import Counter
from dataclasses import dataclass

from roomz_bots import LateAnswer, PluginBot, command, hookimpl


@dataclass
class Settings:
    timeout: float = 60.0  # seconds a question stays open


def deploying(target: str, choice: str | None) -> str:
    return f"Deploying to {target}." if choice == "yes" else f"Not deploying to {target}."


def tally(topic: str, counts: Counter[str]) -> str:
    return f"{topic}: " + ", ".join(f"{label} {count}" for label, count in counts.items())


@command
async def deploy(bot: PluginBot, *, target: str) -> str:
    """Ask before deploying to TARGET."""
    choice = await bot.ask(f"Deploy to {target}?", ["yes", "no"], default="no",
                           timeout=bot.settings.timeout, tag={"target": target})
    return deploying(target, choice)


@command
async def hurry(bot: PluginBot, *, target: str) -> str:
    """Ask before deploying to TARGET, but wait only a moment for the answer."""
    try:
        choice = await asyncio.wait_for(bot.ask(f"Deploy to {target}?", ["yes", "no"],
                                                timeout=60, tag={"target": target}), 0.3)
    except asyncio.TimeoutError:
        return f"No time to wait for {target}."
    return deploying(target, choice)


@command
async def vote(bot: PluginBot, *, topic: str) -> str:
    """Poll tea or coffee on TOPIC."""
    counts = await bot.poll(topic, ["tea", "coffee"], timeout=bot.settings.timeout, tag=topic)
    return tally(topic, counts)


@hookimpl
async def on_answer(bot: PluginBot, answer: LateAnswer) -> None:
    bot.log.info("asker: on_answer %r choices=%s timed_out=%s counts=%s", answer.tag,
                 answer.choices, answer.timed_out, answer.counts)
    if answer.counts is not None:
        await bot.send("Late: " + tally(answer.tag, answer.counts))
    else:
        await bot.send("Late: " + deploying(answer.tag["target"], answer.choice))
