"""Config values as the types their reader declares, converted by msgspec, wrong ones in words.

A plugin's ``Settings`` dataclass (and the config's own tables) may declare any type msgspec
converts: lists, nested dataclasses, ``Literal``, ``Enum``, ``Optional``, defaults. The
conversion is strict: a whole number passes as a number, nothing else changes type. A
mistake is one :class:`ConversionError` naming the key, what was expected and what was found.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

T = TypeVar("T")

#: Types in the words of someone writing a config file.
_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
          Path: "a file name"}
#: msgspec's message: what went wrong, then where (``$.servers[1].port``), when not the top.
_MESSAGE = re.compile(r"(?P<what>.*?)(?: - at `\$(?P<path>.*)`)?", re.DOTALL)
_STEP = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")
_MISSING = re.compile(r"Object missing required field `(\w+)`")
_BOUND = re.compile(r"Expected `[^`]*`(?P<bound> [^,]+)")  # a Meta constraint: "`int` >= 1"
_UNKNOWN = object()  # a value the error's path does not lead to (a table's key)


class ConversionError(ValueError):
    """A value is not of its declared type; ``key`` says where (``max_dice``,
    ``servers[1].port``; empty for the table itself), ``problem`` what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


def convert(value: Any, kind: type[T]) -> T:
    """``value`` (as read from TOML) as ``kind``; raises :class:`ConversionError`."""
    try:
        return msgspec.convert(value, kind, strict=True, dec_hook=_path)
    except msgspec.ValidationError as exc:
        raise _explain(str(exc), value, kind) from None


def describe(kind: Any) -> str:
    """``kind`` in words: ``list[int]`` is "a list of whole numbers"."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind in _WORDS:
        return _WORDS[kind]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if origin in (list, tuple, set, frozenset):
        return f"a list of {describe(args[0] if args else Any).removeprefix('a ')}s"
    if is_dataclass(kind) or dict in (kind, origin):
        return "a table"
    return "any value" if kind is Any else getattr(kind, "__name__", str(kind))


def _explain(message: str, value: Any, kind: Any) -> ConversionError:
    """msgspec's ``message`` about ``value`` as a :class:`ConversionError` in our words."""
    match = _MESSAGE.fullmatch(message)
    assert match is not None  # the pattern matches any text
    path = match["path"] or ""
    for name, index in _STEP.findall(path):  # follow the path into the type and the value
        kind, value = _inside(kind, value, name or index)
    key = path.removeprefix(".")
    missing = _MISSING.match(match["what"])
    if missing:
        field_type, _ = _inside(kind, {}, missing[1])
        return ConversionError(key, f"missing key {missing[1]!r} ({describe(field_type)})")
    bound = _BOUND.fullmatch(match["what"])
    expected = describe(kind) + (bound["bound"] if bound else "")
    got = "" if value is _UNKNOWN else f", got {type(value).__name__} {value!r}"
    return ConversionError(key, f"expected {expected}{got}")


def _inside(kind: Any, value: Any, step: str) -> tuple[Any, Any]:
    """The type and the value at ``step`` (a field name, an index, ``...``) of ``kind``,
    ``value``."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        kind = args[0]  # Optional[X]: the value, not being None, is an X
    if is_dataclass(kind):
        kind = typing.get_type_hints(kind).get(step, Any)
    else:
        item_types = typing.get_args(kind)
        kind = item_types[-1] if item_types else Any  # list[X], dict[K, X]: X
    if step.isdigit() and isinstance(value, list) and int(step) < len(value):
        return kind, value[int(step)]
    if isinstance(value, dict) and step in value:
        return kind, value[step]
    return kind, _UNKNOWN


def _path(kind: type, value: Any) -> Any:
    """File names: ``~`` expanded; an empty one is none."""
    if kind is Path and isinstance(value, str):
        return Path(value).expanduser() if value else None
    raise TypeError(f"expected {describe(kind)}")
