"""Chat commands: ``@command`` turns a function into ``!name args``, parsed from its signature.

Parameters named ``bot`` and ``message`` are passed in; every other positional parameter
takes one word of the line, converted by its annotation (``str``, ``int``, ``float``); a
keyword-only parameter (after ``*``) takes the rest of the line; ``*args`` takes the rest as
words. A command whose arguments do not fit is answered with its usage line. A command that
returns a string replies with it; one that raises is answered with one line saying so
(:mod:`roomz_bots.failures`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

INJECTED = ("bot", "message")
CONVERTERS: dict[Any, tuple[Callable[[str], Any], str]] = {
    str: (str, "text"),
    int: (int, "a whole number"),
    float: (float, "a number"),
}


class UsageError(Exception):
    """Raise from a command when its arguments make no sense; the user gets the usage line."""


@dataclass
class Command:
    """One chat command: its name, aliases, usage line and help text."""

    name: str
    func: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    usage: str = ""
    help: str = ""
    plugin: str | None = None
    # Worked out from func once, in __post_init__: binding runs for every command.
    _params: list[inspect.Parameter] = field(init=False, repr=False, compare=False)
    _types: dict[str, Any] = field(init=False, repr=False, compare=False)
    _wants: set[str] = field(init=False, repr=False, compare=False)
    _by_position: list[inspect.Parameter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        signature = inspect.signature(self.func)
        everything = list(signature.parameters.values())
        # With *args, the parameters up to it go by position; without, all by name.
        self._by_position = everything if any(
            p.kind is p.VAR_POSITIONAL for p in everything) else []
        self._params = [p for p in everything if p.name not in INJECTED]
        self._wants = {name for name in INJECTED if name in signature.parameters}
        self._types = {p.name: _resolve(p.annotation) for p in self._params}
        for name, kind in self._types.items():
            if kind not in CONVERTERS:
                raise TypeError(f"command {self.name!r}: parameter {name!r} is annotated "
                                f"{kind!r}; use str, int or float")
        self.usage = self.usage or " ".join([self.name, *map(_usage_word, self._params)])
        self.help = self.help or inspect.cleandoc(self.func.__doc__ or "").split("\n\n")[0]

    @property
    def names(self) -> tuple[str, ...]:
        """The name and every alias."""
        return (self.name, *self.aliases)

    def parse(self, line: str) -> tuple[dict[str, Any], list[Any]]:
        """Values for the parameters from the text after the command; raises UsageError.

        Returns the named values and the words for ``*args``.
        """
        values: dict[str, Any] = {}
        extra: list[Any] = []
        rest = line.strip()
        for param in self._params:
            if param.kind is param.VAR_POSITIONAL:
                extra = [self._convert(param, word) for word in rest.split()]
                rest = ""
            elif param.kind is param.KEYWORD_ONLY:
                if rest:
                    values[param.name] = self._convert(param, rest)
                elif param.default is param.empty:
                    raise UsageError(f"missing {param.name}")
                rest = ""
            elif param.kind is not param.VAR_KEYWORD:
                word, _, rest = rest.partition(" ")
                rest = rest.strip()
                if word:
                    values[param.name] = self._convert(param, word)
                elif param.default is param.empty:
                    raise UsageError(f"missing {param.name}")
        if rest:
            raise UsageError(f"unexpected {rest!r}")
        return values, extra

    def bind(self, line: str, **injected: Any) -> tuple[list[Any], dict[str, Any]]:
        """Call arguments for the line, with ``bot`` and ``message`` where the function asks."""
        values, extra = self.parse(line)
        values.update((k, v) for k, v in injected.items() if k in self._wants)
        if not self._by_position:
            return [], values
        args: list[Any] = []  # parameters before *args must go by position
        for param in self._by_position:
            if param.kind is param.VAR_POSITIONAL:
                args.extend(extra)
                break
            if param.name not in values:
                break
            args.append(values.pop(param.name))
        return args, values

    def _convert(self, param: inspect.Parameter, word: str) -> Any:
        convert, expected = CONVERTERS[self._types[param.name]]
        try:
            return convert(word)
        except ValueError:
            raise UsageError(f"{param.name} must be {expected}, not {word!r}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself, as if it had not been decorated."""
        return self.func(*args, **kwargs)


def _resolve(annotation: Any) -> Any:
    """The type an annotation names, also when it is a string (``from __future__``)."""
    if annotation is inspect.Parameter.empty:
        return str
    if isinstance(annotation, str):
        return {"str": str, "int": int, "float": float}.get(annotation, annotation)
    return annotation


def _usage_word(param: inspect.Parameter) -> str:
    if param.kind is param.VAR_POSITIONAL:
        return f"[{param.name}...]"
    word = f"{param.name}..." if param.kind is param.KEYWORD_ONLY else param.name
    return f"[{word}]" if param.default is not param.empty else f"<{word}>"


@overload
def command(name: Callable[..., Any]) -> Command: ...


@overload
def command(name: str | None = None, *, aliases: Sequence[str] = (),
            usage: str = "") -> Callable[[Callable[..., Any]], Command]: ...


def command(name: str | Callable[..., Any] | None = None, *, aliases: Sequence[str] = (),
            usage: str = "") -> Callable[[Callable[..., Any]], Command] | Command:
    """Declare a chat command; its docstring's first paragraph is its help.

    ``@command`` names it after the function; ``@command("r", aliases=["roll"])``
    names it; ``usage`` replaces the generated ``name <arg> [optional]`` line.
    """
    def decorate(func: Callable[..., Any]) -> Command:
        return Command(name=name if isinstance(name, str) else func.__name__, func=func,
                       aliases=tuple(aliases), usage=usage)

    if callable(name):
        return decorate(name)
    return decorate
