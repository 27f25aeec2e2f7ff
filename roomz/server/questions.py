"""Open questions and their timeouts, kept by the server so that a question still times out
when the connection that asked it is gone (docs/protocol.md 3.8).

A question is open from its message until its first answer, or, with ``keep_open``, until
its timeout, taking one answer from each connection. An answer is a message that names the
question (``answer_to``) and the chosen answers' ids; every connection sees it. When the
timeout comes first, the server sends the message of :func:`timeout_message` in the
asker's name: the ``timeout_message`` or a line of its own, with the ``default`` answers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..recent_ids import RecentIds
from .rich_messages import Refused

#: Open questions one user may have at once; more are refused (429) until some close.
MAX_OPEN_PER_USER = 50
#: Closed questions remembered, so that a late answer hears "closed" rather than "unknown".
REMEMBERED_CLOSED = 4096

#: Delivers a message event to a user's channel: ``deliver(email, event)``.
Deliver = Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]]


@dataclass
class OpenQuestion:
    """A question waiting for its answer: whose, asked by which connection, and its data."""

    id: str
    email: str
    asker: dict[str, Any]  # the ``user`` object of its message
    connection_id: str
    data: dict[str, Any]  # its ``question_data``, as delivered
    answered_by: set[str] = field(default_factory=set)  # connection ids (keep_open)
    timer: asyncio.TimerHandle | None = None


class Questions:
    """Every open question of this server, with a timer each."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._open: dict[str, OpenQuestion] = {}
        self._open_per_user: Counter[str] = Counter()
        self._closed: RecentIds[str] = RecentIds(REMEMBERED_CLOSED)  # id -> why, whose
        self._tasks: set[asyncio.Task[None]] = set()

    def may_ask(self, email: str) -> None:
        """Raise :class:`Refused` (429) when ``email`` has too many questions open."""
        if self._open_per_user[email] >= MAX_OPEN_PER_USER:
            raise Refused(f"Too many open questions: at most {MAX_OPEN_PER_USER}; wait for "
                          "answers or timeouts", 429)

    def asked(self, message_id: str, email: str, asker: dict[str, Any], connection_id: str,
              data: dict[str, Any]) -> None:
        """The question ``message_id`` was delivered: wait for its answers and its timeout."""
        question = OpenQuestion(message_id, email, asker, connection_id, data)
        question.timer = asyncio.get_running_loop().call_later(
            data["timeout"], self._time_out, message_id)
        self._open[message_id] = question
        self._open_per_user[email] += 1

    def answer(self, email: str, connection_id: str, fields: dict[str, Any]) -> None:
        """Take the answer in ``fields`` (``answer_to``, ``answers``, ``free_text``) from a
        connection of ``email``; raises :class:`Refused` when it does not fit the question,
        or the question is unknown (404) or closed (410). A plain question closes here."""
        question_id = fields["answer_to"]
        question = self._open.get(question_id)
        if question is None or question.email != email:
            closed = self._closed.get(question_id)
            if closed is not None and closed.startswith(email + " "):
                raise Refused(f"Question {question_id} is closed: "
                              f"{closed.partition(' ')[2]}", 410)
            raise Refused(f"Unknown question {question_id}: no question of yours has that id",
                          404)
        data = question.data
        by_id = {answer["id"]: answer for answer in data["answers"]}
        chosen = fields["answers"]
        if unknown := [a for a in chosen if a not in by_id]:
            raise Refused(f"Invalid 'answers': {unknown[0][:40]!r} is not an answer to "
                          f"question {question_id}")
        if len(chosen) > 1 and not data["multi_select"]:
            raise Refused("Invalid 'answers': this question takes one answer")
        if "free_text" in fields and not any(by_id[a]["free_text"] for a in chosen):
            raise Refused("Invalid 'free_text': none of the chosen answers takes free text")
        if data["keep_open"]:
            if connection_id in question.answered_by:
                raise Refused(f"You answered question {question_id} already", 409)
            question.answered_by.add(connection_id)
        else:
            self._close(question, "answered already")

    def _close(self, question: OpenQuestion, why: str) -> None:
        if question.timer is not None:
            question.timer.cancel()
        if self._open.pop(question.id, None) is not None:
            self._open_per_user[question.email] -= 1
            if not self._open_per_user[question.email]:
                del self._open_per_user[question.email]
        self._closed.remember(question.id, f"{question.email} {why}")

    def _time_out(self, question_id: str) -> None:
        question = self._open.get(question_id)
        if question is None:
            return
        self._close(question, "it timed out")
        task = asyncio.create_task(self._deliver(question.email, timeout_message(question)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop every timer (the server is stopping); open questions end unanswered."""
        for question in list(self._open.values()):
            if question.timer is not None:
                question.timer.cancel()
        self._open.clear()
        self._open_per_user.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def timeout_message(question: OpenQuestion) -> dict[str, Any]:
    """The ``message`` event a question's timeout sends, in its asker's name.

    Its ``content`` is the question's ``timeout_message``, else ``No answer to “Deploy?”
    within 60 s: no.`` (the default's label, if it has one) or, for ``keep_open``,
    ``“Lunch?” is closed.``; it carries ``answer_to``, ``timed_out: true`` and ``answers``
    (the default's ids, or none).
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
    return {"id": str(uuid.uuid4()), "user": question.asker,
            "content": content,  # built of escaped parts: escaped as every content is
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "connection_id": question.connection_id, "answer_to": question.id,
            "answers": list(default), "timed_out": True}
