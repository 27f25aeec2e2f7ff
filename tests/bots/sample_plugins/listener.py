"""Hears the other bots of the process too."""

from roomz_bots import Message, command, hookimpl

from . import JOURNAL

REACT_TO_BOTS = True


@hookimpl
def on_message(message: Message) -> None:
    JOURNAL.record("listener", "on_message", text=message.text)


@command
def ping() -> str:
    """Answer pong, to people and bots."""
    return "pong"
