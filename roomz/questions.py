"""Questions with answers to choose from (docs/protocol.md 3.8), as clients ask and read them.

``client.ask()`` sends a question built by :func:`question_payload` and waits for the
message that answers it; ``client.answer()`` sends one (:func:`answer_payload`). A
question's ``content`` is a readable text fallback (the question and its numbered
answers), so a client that does not know questions, the published 0.4.0 one included,
still shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .content import QUESTION
from .recent_ids import RecentIds

#: Answers kept for questions nobody waits for yet (one may come before the asker's ack).
HEARD_QUESTIONS = 256


@dataclass(frozen=True)
class Choice:
    """One answer a question offers: its ``id``, its ``label``, and whether it takes
    free text (an "Other: ..." answer)."""

    id: str
    label: str
    free_text: bool = False


@dataclass(frozen=True)
class Question:
    """A question as it arrived: its message id, text, choices and how it ends."""

    id: str
    text: str
    choices: tuple[Choice, ...]
    multi_select: bool = False
    timeout: float = 300.0
    default: tuple[str, ...] = ()  # the ids the timeout answers with
    keep_open: bool = False  # open until the timeout, one answer per connection

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Question | None:
        """The question a ``message`` event asks, unescaped; None when it asks none."""
        data = event.get("question_data")
        if event.get("content_type") != QUESTION or not isinstance(data, dict):
            return None
        try:
            choices = tuple(Choice(str(a["id"]), _text(a["label"]), bool(a.get("free_text")))
                            for a in data["answers"])
            return cls(str(event["id"]), _text(data["question"]), choices,
                       bool(data.get("multi_select")), float(data.get("timeout", 300.0)),
                       tuple(str(d) for d in data.get("default") or ()),
                       bool(data.get("keep_open")))
        except (KeyError, TypeError, ValueError):
            return None  # malformed: shown as its text, like any message

    def choice(self, id_or_label: str) -> Choice | None:
        """The choice with this id, or else this label (case-insensitive), or None."""
        for choice in self.choices:
            if choice.id == id_or_label:
                return choice
        wanted = id_or_label.strip().casefold()
        return next((c for c in self.choices if c.label.casefold() == wanted), None)

    def labels(self, ids: Sequence[str]) -> list[str]:
        """The labels of the choices ``ids`` (an unknown id as itself)."""
        by_id = {c.id: c.label for c in self.choices}
        return [by_id.get(i, i) for i in ids]


@dataclass(frozen=True)
class Answer:
    """How a question was answered: the chosen labels and ids, free text, and whether it
    was its timeout (with the default) rather than someone."""

    choices: tuple[str, ...]  # the chosen answers' labels
    ids: tuple[str, ...]
    free_text: str | None = None
    timed_out: bool = False
    event: Mapping[str, Any] | None = None  # the answer's message (None: timed out here)

    @property
    def choice(self) -> str | None:
        """The (first) chosen label, or None when the timeout chose nothing."""
        return self.choices[0] if self.choices else None


def question_payload(question: str, answers: Sequence[str | Choice], *, timeout: float,
                     default: str | Sequence[str] | None = None, multi_select: bool = False,
                     keep_open: bool = False, timeout_message: str | None = None,
                     subject: str | None = None) -> tuple[dict[str, Any], Question]:
    """The ``message`` payload that asks ``question``, and the question (its id still
    empty); answers given as labels get the ids ``1``, ``2``...; ``default`` names answers
    by id or label. Raises ``ValueError`` for a question without text or answers."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question must be non-empty text")
    choices = [a if isinstance(a, Choice) else Choice(str(number), a)
               for number, a in enumerate(answers, 1)]
    if not choices:
        raise ValueError("a question needs at least one answer")
    if default is not None:
        default = [default] if isinstance(default, str) else list(default)
    asked = Question("", question.strip(), tuple(choices), multi_select, timeout, (),
                     keep_open)
    if default is not None:
        asked = replace(asked, default=tuple(_id_of(asked, d) for d in default))
    data: dict[str, Any] = {
        "question": asked.text, "multi_select": multi_select, "timeout": timeout,
        "answers": [{"id": c.id, "label": c.label, "free_text": c.free_text} for c in choices]}
    if keep_open:
        data["keep_open"] = True
    if timeout_message:
        data["timeout_message"] = timeout_message
    if asked.default:
        data["default"] = list(asked.default)
    payload = {"content": fallback_text(asked), "content_type": QUESTION,
               "question_data": data}
    if subject:
        payload["subject"] = subject
    return payload, asked


def fallback_text(question: Question) -> str:
    """What clients without questions show: the question, then ``1. yes`` per answer."""
    lines = [question.text, *(f"{n}. {c.label}" for n, c in enumerate(question.choices, 1))]
    return "\n".join(lines)


def answer_payload(question: Question | str, chosen: str | Sequence[str], *,
                   free_text: str | None = None) -> dict[str, Any]:
    """The ``message`` payload answering ``question`` (a :class:`Question`, or its id, then
    ``chosen`` are ids) with ``chosen`` (ids or labels); its content is the labels."""
    picked = [chosen] if isinstance(chosen, str) else list(chosen)
    if not picked:
        raise ValueError("choose at least one answer")
    if isinstance(question, Question):
        ids = [_id_of(question, c) for c in picked]
        content = ", ".join(question.labels(ids))
        question_id = question.id
    else:
        ids, content, question_id = picked, ", ".join(picked), question
    if free_text:
        content = f"{content}: {free_text}"
    payload: dict[str, Any] = {"content": content, "answer_to": question_id, "answers": ids}
    if free_text:
        payload["free_text"] = free_text
    return payload


def answer_of(event: Mapping[str, Any], question: Question | None) -> Answer:
    """The :class:`Answer` an answering ``message`` event carries."""
    ids = tuple(str(a) for a in event.get("answers") or ())
    free_text = event.get("free_text")
    return Answer(tuple(question.labels(ids)) if question else ids, ids,
                  _text(free_text) if isinstance(free_text, str) else None,
                  bool(event.get("timed_out")), event)


def _id_of(question: Question, wanted: str) -> str:
    choice = question.choice(wanted)
    if choice is None:
        offered = ", ".join(repr(c.label) for c in question.choices)
        raise ValueError(f"{wanted!r} is not one of the answers ({offered})")
    return choice.id


def _text(value: Any) -> str:
    """A text field as the server sent it (HTML-escaped), as it was typed."""
    return html.unescape(str(value))


class AnswerBox:
    """The answers a client heard, by question: ``ask()`` waits here for its question's.

    Answers are kept for the last few questions whether or not anyone waits, since an
    answer may arrive before the acknowledgement that tells the asker its question's id.
    """

    def __init__(self) -> None:
        self._heard: RecentIds[list[Mapping[str, Any]]] = RecentIds(HEARD_QUESTIONS)
        self._arrived = asyncio.Condition()

    async def heard(self, event: Mapping[str, Any]) -> None:
        """Keep ``event`` if it answers a question (or is a question's timeout)."""
        question_id = event.get("answer_to")
        if not isinstance(question_id, str):
            return
        self._heard.remember(question_id, [*(self._heard.get(question_id) or []), event])
        async with self._arrived:
            self._arrived.notify_all()

    async def first(self, question: Question, wait: float) -> Answer:
        """The first answer to ``question`` (or its timeout), waiting up to ``wait`` seconds;
        then its default, as a timeout here (the server's may have been missed)."""
        events = await self._until(question.id, wait, lambda events: bool(events))
        if events:
            return answer_of(events[0], question)
        return Answer(tuple(question.labels(question.default)), question.default,
                      timed_out=True)

    async def all(self, question: Question, wait: float) -> list[Answer]:
        """Every answer to a ``keep_open`` question, once its timeout has come (from the
        server, or after ``wait`` seconds here)."""
        events = await self._until(question.id, wait,
                                   lambda events: any(e.get("timed_out") for e in events))
        return [answer_of(e, question) for e in events if not e.get("timed_out")]

    async def _until(self, question_id: str, wait: float,
                     done: Callable[[list[Mapping[str, Any]]], bool]) -> list[Mapping[str, Any]]:
        """The events heard for ``question_id`` once ``done`` says so, or after ``wait``."""
        def events() -> list[Mapping[str, Any]]:
            return self._heard.get(question_id) or []

        async with self._arrived:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait_for(lambda: done(events())), wait)
        return events()
