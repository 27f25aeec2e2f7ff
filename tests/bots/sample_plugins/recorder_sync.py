"""Implements every hook with plain functions, each naming only some of its arguments."""

from collections.abc import Callable
from typing import Any

from roomz_bots import Command, Message, PluginBot, hookimpl

from . import JOURNAL

NAME = "recorder_sync"


@hookimpl
def startup(bot: PluginBot) -> None:
    JOURNAL.record(NAME, "startup", bot=bot)


@hookimpl
def shutdown() -> None:
    JOURNAL.record(NAME, "shutdown")


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    def sync_dyn() -> str:
        """Registered at run time by a plain function."""
        return "sync dyn ok"

    JOURNAL.record(NAME, "register_commands")
    register(Command(name="sync_dyn", func=sync_dyn))


@hookimpl
def on_authenticated(event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_authenticated", event=event)


@hookimpl
def on_message(message: Message) -> None:
    JOURNAL.record(NAME, "on_message", message=message)


@hookimpl
def on_user_joined(bot: PluginBot, event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_user_joined", bot=bot, event=event)


@hookimpl
def on_user_left(event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_user_left", event=event)


@hookimpl
def on_display_name_changed(event: dict[str, Any], bot: PluginBot) -> None:
    JOURNAL.record(NAME, "on_display_name_changed", bot=bot, event=event)


@hookimpl
def on_disconnect(event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_disconnect", event=event)


@hookimpl
def on_error(event: dict[str, Any]) -> None:
    JOURNAL.record(NAME, "on_error", event=event)
