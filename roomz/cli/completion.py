"""Tab completion: slash commands with their descriptions, and their arguments where known."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .commands import SlashCommands


class SlashCompleter(Completer):
    """Completes ``/command`` names from ``commands``, then their arguments, which each
    command suggests from ``target`` (the object its handlers run on)."""

    def __init__(self, commands: SlashCommands, target: Any) -> None:
        self.commands = commands
        self.target = target

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        """Completions for the text before the cursor."""
        text = document.text_before_cursor
        if not text.startswith("/"):
            return
        if " " not in text:
            for command in self.commands:
                if command.name.startswith(text[1:]):
                    yield Completion(f"/{command.name}", start_position=-len(text),
                                     display=command.usage, display_meta=command.help)
            return
        name, _, rest = text[1:].partition(" ")
        found = self.commands.get(name)
        if found is None:
            return
        words = rest.split(" ")
        current = words[-1]
        for value, meta in found.suggestions(self.target, words[:-1]):
            if value.startswith(current) and value != current:
                yield Completion(value, start_position=-len(current), display_meta=meta)
