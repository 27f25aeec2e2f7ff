"""What every keeper of questions does alike (docs/protocol.md 3.8), wherever it keeps them.

Two kinds keep questions: :class:`~roomz.server.questions.Questions` on one node (in
memory and ``questions.sqlite3``), :class:`~roomz.server.redis_questions.RedisQuestions`
for several nodes on one Redis. The chat calls either through :class:`QuestionBook`; both
refuse in the same words (:func:`too_many`, :func:`not_open`, :func:`answered_twice`),
check an answer against its question with :func:`check_answer`, and time a question out
with the message of :func:`timeout_message`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from typing import Any, Protocol

from .question_store import OpenQuestion
from .rich_messages import Refused

#: Open questions one user may have at once; more are refused (429) until some close.
MAX_OPEN_PER_USER = 50
ANSWERED = "answered already"
TIMED_OUT = "it timed out"
#: Names each question's timeout message: sent again after a crash, it has the same id,
#: and clients, which drop a message id they have seen, show it once.
TIMEOUT_IDS = uuid.UUID("5f0e6c1e-3a57-4a8e-9d0b-6b1f2f9c7a11")

#: Delivers a message event to a user's channel: ``deliver(email, event)``.
Deliver = Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]]
#: Undoes a question asked or an answer taken, whose message could not be kept after all.
Undo = Callable[[], Awaitable[None]]


class QuestionBook(Protocol):
    """Open questions, their answers and timeouts: what the chat asks of their keeper.

    ``ask`` and ``answer`` raise :class:`Refused` with the acknowledgement to give, and
    :class:`~roomz.server.unavailable.StoreUnavailable` when the change cannot be recorded
    (then nothing changed); each returns what undoes its change.
    """

    async def open(self) -> None:
        """Take up the questions kept so far, and start timing them out."""

    async def ask(self, message_id: str, email: str, asker: dict[str, Any],
                  connection_id: str, data: dict[str, Any]) -> Undo:
        """Open the question ``message_id`` (``data``: its ``question_data``, as delivered)
        until its answer or its timeout; what withdraws it."""

    async def answer(self, email: str, connection_id: str, fields: dict[str, Any]) -> Undo:
        """Take the answer in ``fields`` (``answer_to``, ``answers``, ``free_text``) from a
        connection of ``email``; what takes it back."""

    def closing(self) -> None:
        """The server is stopping: start no more work that :meth:`close` would wait for."""

    async def close(self) -> None:
        """Stop timing questions out (the server is stopping); they stay kept."""


def too_many() -> Refused:
    """The refusal of a question beyond :data:`MAX_OPEN_PER_USER` open ones (429)."""
    return Refused(f"Too many open questions: at most {MAX_OPEN_PER_USER}; wait for "
                   "answers or timeouts", 429)


def not_open(question_id: str, email: str, closed: str | None) -> Refused:
    """The refusal of an answer from ``email`` to a question that is not open to them:
    410 when it was theirs and closed (``closed``: ``"EMAIL WHY"``, as remembered), else
    404."""
    if closed is not None and closed.startswith(email + " "):
        return Refused(f"Question {question_id} is closed: {closed.partition(' ')[2]}", 410)
    return Refused(f"Unknown question {question_id}: no question of yours has that id", 404)


def answered_twice(question_id: str) -> Refused:
    """The refusal of a second answer from one connection to a ``keep_open`` question."""
    return Refused(f"You answered question {question_id} already", 409)


def check_answer(question_id: str, data: dict[str, Any], fields: dict[str, Any]) -> None:
    """Raise :class:`Refused` (400) when the answer ``fields`` does not fit the question
    whose ``question_data`` is ``data``: an id it lacks, several for a single-select
    question, ``free_text`` for answers that take none."""
    by_id = {answer["id"]: answer for answer in data["answers"]}
    chosen = fields["answers"]
    if unknown := [a for a in chosen if a not in by_id]:
        raise Refused(f"Invalid 'answers': {unknown[0][:40]!r} is not an answer to "
                      f"question {question_id}")
    if len(chosen) > 1 and not data["multi_select"]:
        raise Refused("Invalid 'answers': this question takes one answer")
    if "free_text" in fields and not any(by_id[a]["free_text"] for a in chosen):
        raise Refused("Invalid 'free_text': none of the chosen answers takes free text")


def timeout_message(question: OpenQuestion) -> dict[str, Any]:
    """The ``message`` event a question's timeout sends, in its asker's name.

    Its ``content`` is the question's ``timeout_message``, else ``No answer to “Deploy?”
    within 60 s: no.`` (the default's label, if it has one) or, for ``keep_open``,
    ``“Lunch?” is closed.``; it carries ``answer_to``, ``timed_out: true`` and ``answers``
    (the default's ids, or none). Its id is the question's own (:data:`TIMEOUT_IDS`).
    """
    data = question.data
    default = data.get("default", [])
    if "timeout_message" in data:
        content = data["timeout_message"]
    elif data["keep_open"]:
        content = f"“{data['question']}” is closed."
    else:
        labels = {answer["id"]: answer["label"] for answer in data["answers"]}
        chosen = f": {', '.join(labels[a] for a in default)}" if default else ""
        content = f"No answer to “{data['question']}” within {data['timeout']:g} s{chosen}."
    return {"id": str(uuid.uuid5(TIMEOUT_IDS, question.id)), "user": question.asker,
            "content": content,  # built of escaped parts: escaped as every content is
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "connection_id": question.connection_id, "answer_to": question.id,
            "answers": list(default), "timed_out": True}
