"""What the server's events and acknowledgements look like (docs/protocol.md, 3.4 and 3.5).

A broken or hostile server can send anything. The client asks :func:`event_problem` or
:func:`ack_problem` before it uses what arrived: each says in a few words what is wrong,
or returns None when the data has the documented shape. Fields a server adds are allowed
(extensions); documented fields that are missing or of the wrong type are not. Problems
name fields and types, never values, so a log line cannot be flooded by what was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

NULL = type(None)
TEXT: tuple[type, ...] = (str,)
COUNT: tuple[type, ...] = (int,)
FLAG: tuple[type, ...] = (bool,)
TEXT_OR_NULL: tuple[type, ...] = (str, NULL)
LIST: tuple[type, ...] = (list,)
OBJECT: tuple[type, ...] = (dict,)


@dataclass(frozen=True)
class Maybe:
    """A field servers may leave out: an extension, or one the published server omits."""

    kind: Required


@dataclass(frozen=True)
class ListOf:
    """An array whose every item is an object of ``shape``."""

    shape: Shape


#: What a field must hold: one of some types, a nested object, or an array of objects.
Required = Union[tuple[type, ...], "Shape", ListOf]
#: What a field may hold: what it must, or that optionally.
Kind = Required | Maybe
Shape = Mapping[str, Kind]

USER: Shape = {"id": TEXT, "email": TEXT, "display_name": Maybe(TEXT_OR_NULL)}
MESSAGE: Shape = {"id": TEXT, "user": USER, "content": TEXT, "timestamp": TEXT,
                  "connection_id": Maybe(TEXT_OR_NULL),
                  "cursor": Maybe(TEXT), "replayed": Maybe(FLAG),  # extension: history
                  # extension, rich messages: what the content is, questions and answers
                  "content_type": Maybe(TEXT), "subject": Maybe(TEXT), "language": Maybe(TEXT),
                  "question_data": Maybe(OBJECT), "answer_to": Maybe(TEXT),
                  "answers": Maybe(LIST)}
#: ``authenticated``'s ``history`` (extension): the window, and for a resume what was missed.
HISTORY: Shape = {"messages": COUNT, "missed": Maybe(COUNT), "complete": Maybe(FLAG),
                  "cursor": Maybe(TEXT_OR_NULL)}

#: Server -> client events, by name.
EVENTS: Mapping[str, Shape] = {
    "authenticated": {"user": USER, "channel": TEXT, "server_time": TEXT,
                      "connection_id": Maybe(TEXT_OR_NULL), "history": Maybe(HISTORY),
                      "features": Maybe(LIST)},
    "message": MESSAGE,
    "user_joined": {"user": USER, "timestamp": TEXT, "total_connections": COUNT},
    "user_left": {"user": USER, "timestamp": TEXT, "remaining_connections": COUNT},
    "display_name_changed": {"user": USER, "timestamp": TEXT,
                             "connection_id": Maybe(TEXT_OR_NULL)},
    "session_ended": {"reason": Maybe(TEXT_OR_NULL)},  # extension: this session is over
    "replay": {"messages": ListOf(MESSAGE)},  # extension: messages missed
}

#: Successful acknowledgements of client -> server events (``"status": "ok"`` besides).
ACKS: Mapping[str, Shape] = {
    "message": {"message_id": TEXT, "timestamp": TEXT},
    "set_display_name": {"display_name": TEXT_OR_NULL},
    "history": {"messages": ListOf(MESSAGE)},  # extension
    "who": {"connections": LIST},  # extension
}
ERROR_ACK: Shape = {"error": TEXT, "code": COUNT}


def event_problem(event: str, args: tuple[Any, ...]) -> str | None:
    """What is wrong with the arguments ``event`` arrived with, or None when they are right.

    Every documented event carries exactly one object.
    """
    if len(args) != 1:
        return f"expected one object, got {len(args)} arguments"
    return shape_problem(args[0], EVENTS[event])


def ack_problem(event: str, ack: Any) -> str | None:
    """What is wrong with the acknowledgement of our ``event``, or None when it is right.

    An acknowledgement is either ``{"error": str, "code": int}`` or ``{"status": "ok", ...}``
    with the fields that ``event``'s success carries.
    """
    if isinstance(ack, dict) and "error" in ack:
        return shape_problem(ack, ERROR_ACK)
    if isinstance(ack, dict) and ack.get("status") != "ok":
        return "neither 'status': 'ok' nor an 'error'"
    return shape_problem(ack, ACKS[event])


def shape_problem(value: Any, shape: Shape, where: str = "") -> str | None:
    """What keeps ``value`` from being an object of ``shape``, or None."""
    if not isinstance(value, dict):
        return f"{repr(where) if where else 'the data'} must be an object, got {type_name(value)}"
    for name, kind in shape.items():
        if isinstance(kind, Maybe):
            if name not in value:
                continue
            kind = kind.kind
        path = f"{where}.{name}" if where else name
        if name not in value:
            return f"{path!r} is missing"
        problem = kind_problem(value[name], kind, path)
        if problem is not None:
            return problem
    return None


def kind_problem(value: Any, kind: Required, path: str) -> str | None:
    """What keeps the field at ``path`` from holding ``kind``, or None."""
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            return f"{path!r} must be an array, got {type_name(value)}"
        for number, item in enumerate(value):
            problem = shape_problem(item, kind.shape, f"{path}[{number}]")
            if problem is not None:
                return problem
        return None
    if isinstance(kind, Mapping):
        return shape_problem(value, kind, path)
    if not is_of(value, kind):
        expected = " or ".join(type_name(k) for k in kind)
        return f"{path!r} must be {expected}, got {type_name(value)}"
    return None


def is_of(value: Any, kinds: tuple[type, ...]) -> bool:
    """True when ``value`` is one of ``kinds``; a bool is not a count."""
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def type_name(value: Any) -> str:
    """The JSON name of a value's type, or of a type: string, integer, object, array, null."""
    kind = value if isinstance(value, type) else type(value)
    return {str: "a string", int: "an integer", bool: "a boolean", float: "a number",
            dict: "an object", list: "an array", tuple: "an array",
            NULL: "null"}.get(kind, kind.__name__)
