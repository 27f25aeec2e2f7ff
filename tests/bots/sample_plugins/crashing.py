"""Raises in a command and in a message hook: what is the person who typed it told?

It imports nothing of the tests: the headless runner's tests copy it next to a config.
"""

import argparse

from roomz_bots import Message, PluginBot, command, hookimpl


@hookimpl
def on_message(bot: PluginBot, message: Message) -> None:
    if "crash" in message.text:
        raise RuntimeError(f"the hook broke on {message.text!r}")


@command
def crash(*, words: str = "") -> str:
    """Divide by zero. Takes any words: a reply starting with !crash would run it again."""
    return f"{len(words) / 0}"


@command
def parse(*, words: str = "") -> str:
    """Read ``--count N`` with argparse, which exits (SystemExit) on words it cannot parse."""
    parser = argparse.ArgumentParser(prog="!parse")
    parser.add_argument("--count", type=int, required=True)
    return f"count {parser.parse_args(words.split()).count}"
