"""Tab completion: slash commands with their descriptions, and their arguments where known."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .commands import COMMANDS

#: Suggests the arguments of a command: (command name, words so far) -> (value, meta) pairs.
ArgumentSource = Callable[[str, list[str]], Iterable[tuple[str, str]]]


class SlashCompleter(Completer):
    """Completes ``/command`` names, then arguments from ``arguments``."""

    def __init__(self, arguments: ArgumentSource) -> None:
        self.arguments = arguments

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        """Completions for the text before the cursor."""
        text = document.text_before_cursor
        if not text.startswith("/"):
            return
        if " " not in text:
            for command in COMMANDS:
                if command.name.startswith(text[1:]):
                    yield Completion(f"/{command.name}", start_position=-len(text),
                                     display=command.usage, display_meta=command.help)
            return
        name, _, rest = text[1:].partition(" ")
        words = rest.split(" ")
        current = words[-1]
        for value, meta in self.arguments(name, words[:-1]):
            if value.startswith(current) and value != current:
                yield Completion(value, start_position=-len(current), display_meta=meta)
