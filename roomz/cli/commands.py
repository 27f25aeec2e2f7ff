"""Slash commands as one registry: each handler is declared once, with its usage and
description, and dispatch, ``/help`` and completion all read the registry.

::

    COMMANDS = SlashCommands()
    command = COMMANDS.command

    class ChatApp:
        @command("login", "<email>", "email me a sign-in link", arguments=emails_used_before)
        async def login(self, email: str) -> None: ...

A handler is an ``async`` method (or function) of the object commands run on: it takes
the text after the command when the usage names arguments, and nothing otherwise. This
module knows nothing of that object, so the terminal imports it, never the other way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

#: Runs a command on its target (the terminal): ``handler(target)`` or
#: ``handler(target, args)``; False means "leave".
Handler = Callable[..., Awaitable[bool | None]]
#: Suggests a command's arguments: (target, words typed so far) -> (value, description) pairs.
ArgumentSource = Callable[[Any, list[str]], Iterable[tuple[str, str]]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class SlashCommand:
    """One command: its arguments for the usage line, what it does, its handler, and where
    its arguments can be completed from."""

    name: str
    args: str
    help: str
    handler: Handler
    arguments: ArgumentSource | None = None

    @property
    def needs_args(self) -> bool:
        """True when the usage line has a ``<required>`` argument."""
        return "<" in self.args

    @property
    def usage(self) -> str:
        """``/name <args>``."""
        return f"/{self.name} {self.args}".strip()

    async def run(self, target: Any, args: str) -> bool | None:
        """Run the handler on ``target``, with ``args`` when the usage names any."""
        return await (self.handler(target, args) if self.args else self.handler(target))

    def suggestions(self, target: Any, words: list[str]) -> Iterable[tuple[str, str]]:
        """Known arguments after ``words``, as (value, description) pairs."""
        return self.arguments(target, words) if self.arguments else ()


class SlashCommands:
    """The commands, by name, in the order they were declared (the order ``/help`` lists)."""

    def __init__(self) -> None:
        self._by_name: dict[str, SlashCommand] = {}

    def command(self, name: str, args: str, help: str, *,
                arguments: ArgumentSource | None = None) -> Callable[[H], H]:
        """Declare the decorated handler as ``/name``: ``args`` for the usage line
        (``<required>``, ``[optional]``), ``help`` for ``/help`` and completion,
        ``arguments`` to complete its arguments from."""
        def declare(handler: H) -> H:
            if name in self._by_name:  # two handlers for one command: a mistake of ours
                raise ValueError(f"/{name} is declared twice")
            self._by_name[name] = SlashCommand(name, args, help, handler, arguments)
            return handler
        return declare

    def get(self, name: str) -> SlashCommand | None:
        """The command called ``name``, or None."""
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[SlashCommand]:
        return iter(self._by_name.values())

    def help_lines(self) -> list[str]:
        """One line per command: its usage, padded to a column, and what it does."""
        width = max((len(c.usage) for c in self), default=0)
        return [f"{c.usage.ljust(width)}  {c.help}" for c in self]
