"""Poll: ``!poll Lunch? | pizza | sushi`` asks every connection, then shows the count.

The question is open for ``seconds`` (a minute by default); each connection (terminal,
page, another device) answers once, with a button or by typing the answer's number.
When the bot restarts while a poll is open, the count still comes, at its end.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta

from roomz_bots import LateAnswer, Markdown, PluginBot, UsageError, command, hookimpl


@dataclass
class Settings:
    """``[plugins.poll]`` in the config."""

    seconds: Annotated[float, Meta(ge=1, le=86400)] = 60.0  # what a question may stay open


@command(usage="poll <question> | <answer> | <answer>...")
async def poll(bot: PluginBot, *, text: str) -> Markdown:
    """Ask a question with answers to choose from, and count the answers."""
    question, *answers = [part.strip() for part in text.split("|")]
    if not question or len(answers) < 2 or not all(answers):
        raise UsageError("a question and at least two answers, split by |")
    return results(question, await bot.poll(question, answers, timeout=bot.settings.seconds))


@hookimpl
async def on_answer(bot: PluginBot, answer: LateAnswer) -> None:
    """A poll that was open when the bot stopped: its count, at its end."""
    if answer.counts is not None:
        await bot.send(results(answer.question, answer.counts))


def results(question: str, counts: Counter[str]) -> Markdown:
    """The count as a table, the most chosen first."""
    rows = [f"| {answer} | {count} |" for answer, count in counts.most_common()]
    return Markdown(f"**{question}**\n\n| answer | votes |\n|---|---:|\n" + "\n".join(rows))
