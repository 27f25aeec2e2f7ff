"""Open questions and their timeouts on one node, kept by the server so that a question
still times out when the connection that asked it is gone, and across restarts
(docs/protocol.md 3.8). Several nodes keep theirs in Redis (:mod:`.redis_questions`); what
both do alike is in :mod:`.question_rules`.

A question is open from its message until its first answer, or, with ``keep_open``, until
its timeout, taking one answer from each connection. An answer is a message that names the
question (``answer_to``) and the chosen answers' ids; every connection sees it. When the
timeout comes first, the server sends the message of :func:`timeout_message` in the
asker's name: the ``timeout_message`` or a line of its own, with the ``default`` answers.

Each question asked or answered is recorded in the :class:`QuestionStore` before it counts,
and the caller gets what undoes it, for a message that then cannot be kept. When the
server starts again, the questions it had open wait for what remains of their time; one
whose deadline passed while the server was down times out at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..recent_ids import RecentIds
from .question_rules import (
    ANSWERED,
    MAX_OPEN_PER_USER,
    TIMED_OUT,
    Deliver,
    Undo,
    answered_twice,
    check_answer,
    not_open,
    timeout_message,
    too_many,
)
from .question_store import REMEMBERED_CLOSED, OpenQuestion, QuestionStore
from .unavailable import StoreUnavailable

log = logging.getLogger("roomz.server")


class Questions:
    """Every open question of this server, with a timer each, recorded in ``store``: the
    :class:`~roomz.server.question_rules.QuestionBook` of one node."""

    def __init__(self, deliver: Deliver, store: QuestionStore) -> None:
        self._deliver = deliver
        self._store = store
        self._open: dict[str, OpenQuestion] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._open_per_user: Counter[str] = Counter()
        self._closed: RecentIds[str] = RecentIds(REMEMBERED_CLOSED)  # id -> whose, why
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Open the store and take up the questions it holds: each waits for what remains
        of its time, and one whose deadline has passed times out at once.
        :class:`~roomz.server.settings.SettingsError` says why the store cannot be opened."""
        opened, closed = self._store.open()
        for gone in closed:
            self._closed.remember(gone.id, f"{gone.email} {gone.why}")
        for question in opened:
            self._add(question)

    async def ask(self, message_id: str, email: str, asker: dict[str, Any],
                  connection_id: str, data: dict[str, Any]) -> Undo:
        """Open the question ``message_id`` (``data``: its ``question_data``, as delivered)
        until its answer or its timeout; what withdraws it. Raises :class:`Refused` (429)
        when ``email`` has too many questions open, :class:`StoreUnavailable` when the
        question cannot be recorded (then nothing changed)."""
        if self._open_per_user[email] >= MAX_OPEN_PER_USER:
            raise too_many()
        question = OpenQuestion(message_id, email, asker, connection_id, data,
                                deadline=time.time() + data["timeout"])
        self._store.keep_open(question)
        self._add(question)
        return functools.partial(self._withdraw, question)

    async def answer(self, email: str, connection_id: str, fields: dict[str, Any]) -> Undo:
        """Take the answer in ``fields`` (``answer_to``, ``answers``, ``free_text``) from a
        connection of ``email``; what takes it back. A plain question closes here.

        Raises :class:`Refused` when the answer does not fit the question, or the question
        is unknown (404) or closed (410); :class:`StoreUnavailable` when the answer cannot
        be recorded (then nothing changed).
        """
        question_id = fields["answer_to"]
        question = self._open.get(question_id)
        if question is None or question.email != email:
            raise not_open(question_id, email, self._closed.get(question_id))
        check_answer(question_id, question.data, fields)
        if not question.data["keep_open"]:
            self._store.keep_closed(question, ANSWERED)
            self._remove(question, ANSWERED)
            return functools.partial(self._reopen, question)
        if connection_id in question.answered_by:
            raise answered_twice(question_id)
        self._store.keep_open(replace(question,
                                      answered_by=question.answered_by | {connection_id}))
        question.answered_by.add(connection_id)
        return functools.partial(self._take_back, question, connection_id)

    def _add(self, question: OpenQuestion) -> None:
        """Wait for ``question``'s answers until its deadline (at once, if it has passed)."""
        self._open[question.id] = question
        self._open_per_user[question.email] += 1
        # Never more than its timeout: a clock behind at a restart must not stretch it.
        left = min(question.data["timeout"], max(0.0, question.deadline - time.time()))
        self._timers[question.id] = asyncio.get_running_loop().call_later(
            left, self._time_out, question.id)

    def _remove(self, question: OpenQuestion, why: str | None) -> None:
        """Stop waiting for ``question``; remember why it closed, if it did."""
        if (timer := self._timers.pop(question.id, None)) is not None:
            timer.cancel()
        if self._open.pop(question.id, None) is not None:
            self._open_per_user[question.email] -= 1
            if not self._open_per_user[question.email]:
                del self._open_per_user[question.email]
        if why is not None:
            self._closed.remember(question.id, f"{question.email} {why}")

    async def _withdraw(self, question: OpenQuestion) -> None:
        if self._open.get(question.id) is question:
            self._remove(question, None)
            self._undo_in_store(lambda: self._store.forget(question.id), "stay open")

    async def _reopen(self, question: OpenQuestion) -> None:
        if question.id not in self._open:
            self._add(question)
            self._undo_in_store(lambda: self._store.keep_open(question), "stay closed")

    async def _take_back(self, question: OpenQuestion, connection_id: str) -> None:
        if self._open.get(question.id) is question:
            question.answered_by.discard(connection_id)
            self._undo_in_store(lambda: self._store.keep_open(question),
                                "refuse that connection's answer")

    def _undo_in_store(self, undo: Callable[[], None], after_a_restart: str) -> None:
        try:
            undo()
        except StoreUnavailable as exc:  # this run is right; only a restart would differ
            log.warning("a question's change was undone, but not in its store (%s): after "
                        "a restart it may %s", exc, after_a_restart)

    def _time_out(self, question_id: str) -> None:
        question = self._open.get(question_id)
        if question is None:
            return
        self._remove(question, TIMED_OUT)
        task = asyncio.create_task(self._timed_out(question))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _timed_out(self, question: OpenQuestion) -> None:
        """Send the timeout message, then record the question closed: a server stopped in
        between times the question out again when it starts (twice rather than never, and
        under the same message id, which clients show once)."""
        await self._deliver(question.email, timeout_message(question))
        try:
            self._store.keep_closed(question, TIMED_OUT)
        except StoreUnavailable as exc:
            log.warning("question %s timed out, but %s: it will time out again if the server "
                        "restarts", question.id, exc)

    def closing(self) -> None:
        """Nothing to do: :meth:`close` stops the timers without waiting for them."""

    async def close(self) -> None:
        """Stop every timer and close the store (the server is stopping); the open
        questions stay in it for the next start."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._open.clear()
        self._open_per_user.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._store.close()

