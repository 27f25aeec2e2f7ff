"""Commands whose arguments are parsed from their signatures (string annotations included)."""

from __future__ import annotations

from roomz_bots import Message, PluginBot, UsageError, command


@command
def add(a: int, b: int) -> str:
    """Add two whole numbers.

    This second paragraph is not part of the help.
    """
    return f"{a} + {b} = {a + b}"


@command("mul", aliases=["times", "x"])
def multiply(a: float, b: float = 2.0) -> str:
    """Multiply two numbers."""
    return f"{a * b:g}"


@command
def repeat(times: int, *, text: str) -> str:
    """Say the text several times."""
    return " | ".join([text] * times)


@command
def total(bot: PluginBot, *numbers: float) -> str:
    """Sum any number of numbers."""
    return f"total {sum(numbers):g} of {len(numbers)}"


@command(usage="whoami")
def whoami(message: Message) -> str:
    """Say who sent the command."""
    return str(message.label)


@command
async def shout(*, text: str = "hey") -> str:
    """Shout the text (a coroutine command with a default)."""
    return text.upper()


@command(usage="pick <one|two>")
def pick(choice: str) -> str:
    """Pick one or two."""
    if choice not in ("one", "two"):
        raise UsageError(f"{choice!r} is neither")
    return f"picked {choice}"
