"""Hears people only (the default)."""

from roomz_bots import Message, command, hookimpl

from . import JOURNAL


@hookimpl
def on_message(message: Message) -> None:
    JOURNAL.record("deaf", "on_message", text=message.text)


@command
def hush() -> str:
    """Answer people only."""
    return "heard you"
