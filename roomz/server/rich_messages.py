"""The optional fields of a rich message (docs/protocol.md 3.8), checked in one place.

:func:`rich_fields` reads ``content_type``, ``language``, ``subject``, ``question_data``
and an answer's ``answer_to``, ``answers`` and ``free_text`` from a ``message`` payload.
It returns the fields the delivered event carries (text HTML-escaped, as ``content`` is),
or raises :class:`Refused` with the 400 answer that names the field. A payload without any
of them gives no fields: the message is exactly the published protocol's.
"""

from __future__ import annotations

import math
from typing import Any

from ..content import (
    CONTENT_TYPES,
    LANGUAGE,
    MAX_LANGUAGE_LENGTH,
    MAX_SUBJECT_LENGTH,
    PLAIN,
    QUESTION,
)
from ..limits import MAX_MESSAGE_LENGTH
from .validation import breaks_the_line, clean_content

MAX_QUESTION_LENGTH = 500
MAX_ANSWERS = 20
MAX_ANSWER_ID_LENGTH = 40
MAX_LABEL_LENGTH = 200
#: A question waits this long for its answer unless it says otherwise; at most a day.
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 86400.0
#: Every field of this extension: a payload with none of them is a plain message.
FIELDS = ("content_type", "language", "subject", "question_data", "answer_to", "answers",
          "free_text")


class Refused(Exception):
    """A rich field that breaks the rules; ``answer`` is the error acknowledgement."""

    def __init__(self, error: str, code: int = 400) -> None:
        super().__init__(error)
        self.answer = {"error": error, "code": code}


def rich_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The checked rich fields of the ``message`` payload ``data``, ready to deliver.

    Raises :class:`Refused` naming the first field that is wrong.
    """
    if len(data) == 1 or not any(name in data for name in FIELDS):
        return {}  # the common case, a plain message: {"content": ...} alone
    fields: dict[str, Any] = {}
    content_type = data.get("content_type", PLAIN)
    if content_type not in CONTENT_TYPES:
        raise Refused(f"Unknown 'content_type' {str(content_type)[:40]!r}: expected one of "
                      f"{', '.join(CONTENT_TYPES)}")
    if content_type != PLAIN:
        fields["content_type"] = content_type
    if (language := data.get("language")) is not None:
        if not isinstance(language, str) or not LANGUAGE.match(language) \
                or len(language) > MAX_LANGUAGE_LENGTH:
            raise Refused(f"Invalid 'language': a name such as python, at most "
                          f"{MAX_LANGUAGE_LENGTH} characters")
        fields["language"] = language
    if (subject := data.get("subject")) is not None:
        fields["subject"] = _line(subject, "subject", MAX_SUBJECT_LENGTH)
    question = data.get("question_data")
    if content_type == QUESTION:
        if question is None:
            raise Refused("Missing 'question_data': a question needs its question and answers")
        fields["question_data"] = question_fields(question)
    elif question is not None:
        raise Refused(f"'question_data' goes with content_type {QUESTION!r} only")
    if "answer_to" in data or "answers" in data:
        if content_type == QUESTION:
            raise Refused("A question cannot answer another ('answer_to' with a question)")
        fields.update(answer_fields(data))
    elif data.get("free_text") is not None:
        raise Refused("'free_text' goes with 'answer_to' and 'answers' only")
    return fields


def question_fields(question: Any) -> dict[str, Any]:
    """``question_data`` checked and completed with its defaults, its text escaped."""
    if not isinstance(question, dict):
        raise Refused("Invalid 'question_data': must be an object")
    text = _line(question.get("question"), "question_data.question", MAX_QUESTION_LENGTH,
                 multiline=True)
    answers = question.get("answers")
    if not isinstance(answers, list) or not 1 <= len(answers) <= MAX_ANSWERS:
        raise Refused(f"Invalid 'question_data.answers': a list of 1-{MAX_ANSWERS} answers")
    checked = [_answer(answer, number) for number, answer in enumerate(answers)]
    ids = [answer["id"] for answer in checked]
    if len(set(ids)) != len(ids):
        raise Refused("Invalid 'question_data.answers': two answers have the same 'id'")
    multi_select = _flag(question, "multi_select")
    keep_open = _flag(question, "keep_open")
    timeout = question.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or not 1 <= timeout <= MAX_TIMEOUT:
        raise Refused(f"Invalid 'question_data.timeout': seconds, 1 to {MAX_TIMEOUT:g}")
    fields: dict[str, Any] = {"question": text, "answers": checked,
                              "multi_select": multi_select, "timeout": timeout,
                              "keep_open": keep_open}
    if (message := question.get("timeout_message")) is not None:
        fields["timeout_message"] = _line(message, "question_data.timeout_message",
                                          MAX_MESSAGE_LENGTH, multiline=True)
    default = question.get("default")
    if default is not None:
        chosen = default if isinstance(default, list) else [default]
        if not chosen or any(not isinstance(d, str) or d not in ids for d in chosen) \
                or (len(chosen) > 1 and not multi_select):
            raise Refused("Invalid 'question_data.default': the 'id' of one of its answers "
                          "(a list of them when multi_select)")
        fields["default"] = chosen
    return fields


def answer_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``answer_to``, ``answers`` and ``free_text`` of an answer, checked for their form
    (whether they fit the question is :mod:`.questions`' to say)."""
    answer_to = data.get("answer_to")
    if not isinstance(answer_to, str) or not 1 <= len(answer_to) <= 100:
        raise Refused("Invalid 'answer_to': the id of the question's message")
    answers = data.get("answers")
    if not isinstance(answers, list) or not 1 <= len(answers) <= MAX_ANSWERS \
            or any(not isinstance(a, str) for a in answers) or len(set(answers)) != len(answers):
        raise Refused("Invalid 'answers': a list of the chosen answers' ids")
    fields: dict[str, Any] = {"answer_to": answer_to, "answers": answers}
    if (free_text := data.get("free_text")) is not None:
        fields["free_text"] = _line(free_text, "free_text", MAX_MESSAGE_LENGTH, multiline=True)
    return fields


def _answer(answer: Any, number: int) -> dict[str, Any]:
    where = f"question_data.answers[{number}]"
    if not isinstance(answer, dict):
        raise Refused(f"Invalid '{where}': must be an object with 'id' and 'label'")
    answer_id = answer.get("id")
    if not isinstance(answer_id, str) or not 1 <= len(answer_id) <= MAX_ANSWER_ID_LENGTH \
            or breaks_the_line(answer_id):
        raise Refused(f"Invalid '{where}.id': 1-{MAX_ANSWER_ID_LENGTH} characters")
    return {"id": answer_id, "label": _line(answer.get("label"), f"{where}.label",
                                            MAX_LABEL_LENGTH),
            "free_text": _flag(answer, "free_text", where)}


def _flag(data: dict[str, Any], name: str, where: str = "question_data") -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise Refused(f"Invalid '{where}.{name}': must be true or false")
    return value


def _line(value: Any, name: str, longest: int, *, multiline: bool = False) -> str:
    """A text field trimmed, checked and HTML-escaped; one line unless ``multiline``."""
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"Invalid '{name}': must be non-empty text")
    value = value.strip()
    if len(value) > longest:
        raise Refused(f"Invalid '{name}': {len(value)} characters, at most {longest}")
    if not multiline and breaks_the_line(value):
        raise Refused(f"Invalid '{name}': one line, without control characters")
    return clean_content(value)
