"""The questions a bot asked, kept in its store until answered, so that an answer that
comes after its run ended still reaches the plugin that asked (the ``on_answer`` hook).

``bot.ask()`` and ``bot.poll()`` wait for their answer in a coroutine that dies with the
bot's process. The server keeps the question (and its timeout) meanwhile, and its answer
reaches the next run, live or replayed from the history, as a message like any other.
Each question a plugin asks is therefore noted in the bot's store as it goes out (under
its id once the server has taken it), and forgotten when its answer is handed over: to
the ``ask()`` that waits for it, or else to the plugin's ``on_answer``, once, since the
note goes before the hook runs.
"""

from __future__ import annotations

import html
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from roomz.message import Message
from roomz.questions import Question

from .store import Store

log = logging.getLogger("roomz_bots")

#: A note whose question should have timed out this long ago is dropped as the bot starts:
#: its answer was not in the history the bot came back to (seconds; one week).
FORGET_AFTER = 7 * 24 * 3600.0


@dataclass(frozen=True)
class LateAnswer:
    """The answer to a question the plugin asked with ``bot.ask()`` or ``bot.poll()``,
    which no ``ask()`` waits for any more (the bot's process ended since, say).

    For ``ask()``: ``choice`` is the label chosen (or the default's, at the timeout).
    For ``poll()``: it comes once, at the poll's timeout, with ``counts`` as ``poll()``
    would have returned them, the answers heard before a restart included.
    """

    #: The question as asked.
    question: str
    #: What the plugin gave ``ask(..., tag=...)`` (None without one).
    tag: Any
    #: The labels chosen: one, or several for a multi-select question; none for a poll.
    choices: tuple[str, ...]
    #: True when nobody answered in time: then ``choices`` is the default.
    timed_out: bool
    #: The message that closed the question: the person's answer, or the server's timeout.
    message: Message
    #: The text a person typed with an answer that takes it, or None.
    free_text: str | None = None
    #: For a poll, how many chose each answer (0 included, in the order offered).
    counts: Counter[str] | None = None

    @property
    def choice(self) -> str | None:
        """The (first) label chosen, or None (nothing chosen, or a poll)."""
        return self.choices[0] if self.choices else None

    @property
    def question_id(self) -> str:
        """The id of the question's message (what answers name in ``answer_to``)."""
        return str(self.message.raw.get("answer_to", ""))


class AskedQuestions:
    """The questions this bot's plugins asked that are not answered yet, in its store.

    A question is noted before it goes out, then under its id once the server has taken
    it. A bot killed in between knows the id from its own question, which it hears again
    as it comes back (the history since its saved place): :meth:`recognise`; an ask cut
    short in between, from the question as it heard it just before (:meth:`cut_short`).
    """

    def __init__(self, store: Store, server_url: str) -> None:
        self._store = store
        self._prefix = f"question {server_url} "  # question ids are the server's
        self._asking_prefix = f"asking {server_url} "
        #: The questions an ask() of this run waits for, with the message that closed each
        #: once heard (the ask may yet be cancelled before it returns it).
        self._waited: dict[str, Mapping[str, Any] | None] = {}
        #: The notes of this run's questions not taken yet, with the id of each once heard:
        #: the server broadcasts a question (to its asker too) before it acknowledges it.
        self._asking: dict[str, str | None] = {}

    def asking(self, question: Question, *, plugin: str, tag: Any, poll: bool, now: float,
               connection_id: str | None) -> str:
        """Note ``question`` (its id still empty) as it goes out through ``connection_id``;
        returns the note's key, for :meth:`taken` and :meth:`cut_short`."""
        note: dict[str, Any] = {
            "plugin": plugin, "tag": tag, "question": question.text,
            "labels": {c.id: c.label for c in question.choices},
            "deadline": now + question.timeout, "connection_id": connection_id}
        if poll:
            note["counts"] = {c.label: 0 for c in question.choices}
            note["counted"] = []  # the answers' message ids: a replay is not counted twice
        # In the order asked, which is the order the server took them in: two questions
        # alike, both asked before a kill, are recognised as the ones they are.
        key = f"{self._asking_prefix}{time.time_ns():020d} {uuid.uuid4()}"
        self._store[key] = note
        self._asking[key] = None
        return key

    def taken(self, key: str, question_id: str) -> None:
        """The server took the question noted under ``key``: note it under its id, as one
        an ``ask()`` of this run waits for."""
        self._asking.pop(key, None)
        self._waited[question_id] = None
        self._store.rename(key, self._prefix + question_id)

    def cut_short(self, key: str, *, refused: bool) -> None:
        """The ``ask()`` of the question noted under ``key`` ended before the server said
        it took it: cancelled, no acknowledgement in time, the connection lost, or
        ``refused`` by the server. A question heard meanwhile was asked: its answer goes to
        ``on_answer``. One refused is forgotten; else it is recognised if heard later."""
        question_id = self._asking.pop(key, None)
        if question_id is not None:
            self._store.rename(key, self._prefix + question_id)
        elif refused:
            self._store.pop(key)

    def recognise(self, event: Mapping[str, Any]) -> None:
        """``event`` is a question: when this bot asked it, note it under its id (now, for an
        ``ask()`` that ended before the acknowledgement; when it does, for one waiting)."""
        question = Question.of(event)
        if question is None or question.id in self._asking.values():
            return
        for key, note in self._store.items(self._asking_prefix):
            if (note.get("question") == question.text
                    and note.get("connection_id") == event.get("connection_id")
                    and self._asking.get(key) is None):
                if key in self._asking:
                    self._asking[key] = question.id
                else:
                    self._store.rename(key, self._prefix + question.id)
                return

    def answered(self, question_id: str) -> None:
        """The ``ask()`` waiting for ``question_id`` has its answer: forget the question."""
        self._waited.pop(question_id, None)
        self._store.pop(self._prefix + question_id)

    def abandoned(self, question_id: str) -> Mapping[str, Any] | None:
        """The ``ask()`` waiting for ``question_id`` was cancelled (the bot stops, or the
        plugin gave up): its answer goes to ``on_answer`` when it comes, in this run or a
        later one. Returns the message that closed it if that came already: hand it over."""
        return self._waited.pop(question_id, None)

    def is_ours(self, event: Mapping[str, Any]) -> bool:
        """True when ``event`` answers a question noted here."""
        question_id = event.get("answer_to")
        return isinstance(question_id, str) and self._prefix + question_id in self._store

    def heard(self, event: Mapping[str, Any]) -> tuple[str, LateAnswer] | None:
        """Take in an answering message; the plugin that asked and its :class:`LateAnswer`
        when the question was ours, no ``ask()`` waits for it, and it is now closed."""
        question_id = event.get("answer_to")
        if not isinstance(question_id, str):
            return None
        key = self._prefix + question_id
        note = self._store.get(key)
        if not isinstance(note, dict):
            return None  # another's question, or one already handed over
        timed_out = bool(event.get("timed_out"))
        labels = [note["labels"].get(str(i), str(i)) for i in event.get("answers") or ()]
        if "counts" in note and not timed_out:  # a poll's answer: count it, once
            if event.get("id") not in note["counted"]:
                note["counted"].append(event.get("id"))
                for label in labels:
                    note["counts"][label] = note["counts"].get(label, 0) + 1
                self._store[key] = note
            return None
        if question_id in self._waited:
            self._waited[question_id] = event
            return None  # its ask() takes it, and forgets the note
        del self._store[key]  # before the hook runs: a restart never hands it over again
        free_text = event.get("free_text")
        answer = LateAnswer(
            note["question"], note["tag"], () if "counts" in note else tuple(labels),
            timed_out, Message(dict(event)),
            html.unescape(free_text) if isinstance(free_text, str) else None,
            Counter(note["counts"]) if "counts" in note else None)
        return note["plugin"], answer

    def forget_stale(self, now: float) -> None:
        """Drop the notes of questions that timed out long ago (one line each): their
        answer was not in the history the bot came back to, and never will be."""
        notes = [*self._store.items(self._prefix), *self._store.items(self._asking_prefix)]
        for key, note in notes:
            if now > note.get("deadline", now) + FORGET_AFTER:
                log.warning("forgetting the question %r of plugin %s: no answer reached "
                            "the bot within a week of its timeout", note.get("question"),
                            note.get("plugin"))
                del self._store[key]


def check_tag(tag: Any) -> None:
    """Raise ``ValueError`` for a tag the store cannot keep (it must be JSON)."""
    try:
        json.dumps(tag)
    except (TypeError, ValueError):
        raise ValueError(f"the tag of a question must be JSON (str, number, bool, None, "
                         f"list or dict of those), got {tag!r}") from None
