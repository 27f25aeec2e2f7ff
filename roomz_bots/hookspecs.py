"""The hooks a Roomz plugin may implement; each receives only the arguments it names.

Every event the client receives has a hook; ``bot`` is the bot as this plugin sees it
(:class:`roomz_bots.PluginBot`). Hooks may be plain functions or coroutines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .asked import LateAnswer
    from .commands import Command
    from .message import Message
    from .plugin_bot import PluginBot

hookspec = pluggy.HookspecMarker("roomz")
hookimpl = pluggy.HookimplMarker("roomz")


@hookspec
def startup(bot: PluginBot) -> None:
    """The bot starts (before it connects): set up state, schedule jobs."""


@hookspec
def shutdown(bot: PluginBot) -> None:
    """The bot stops: save state; scheduled jobs are cancelled afterwards."""


@hookspec
def register_commands(register: Callable[[Command], None]) -> None:
    """Call ``register(command)`` for commands not declared with ``@command`` at module level."""


@hookspec
def on_authenticated(bot: PluginBot, event: dict[str, Any]) -> None:
    """The bot's connection is signed in (again, after a reconnect); ``event`` as on the wire."""


@hookspec
def on_message(bot: PluginBot, message: Message) -> None:
    """A chat message from someone else than this bot; command lines too (``!roll 2d6``)."""


@hookspec
def on_answer(bot: PluginBot, answer: LateAnswer) -> None:
    """An answer to a question this plugin asked (``bot.ask``, ``bot.poll``) that no ask
    waits for any more: the bot stopped (or restarted) before it came, or the ask was
    cancelled. Called once, for this plugin's own questions only; ``answer.tag`` is what
    the ask carried. A poll's comes at its timeout, with ``answer.counts``."""


@hookspec
def on_user_joined(bot: PluginBot, event: dict[str, Any]) -> None:
    """Another connection of the user joined; ``event["total_connections"]`` counts them."""


@hookspec
def on_user_left(bot: PluginBot, event: dict[str, Any]) -> None:
    """A connection of the user left; ``event["remaining_connections"]`` counts the rest."""


@hookspec
def on_display_name_changed(bot: PluginBot, event: dict[str, Any]) -> None:
    """Another connection changed its display name; ``event["display_name"]`` is the new one."""


@hookspec
def on_disconnect(bot: PluginBot, event: dict[str, Any]) -> None:
    """The bot's connection dropped; it is reconnecting unless it was stopped."""


@hookspec
def on_error(bot: PluginBot, event: dict[str, Any]) -> None:
    """The client reported an error, e.g. ``{"error": ..., "code": 401}``: the server ended or
    refused the session (the bot then stops)."""
