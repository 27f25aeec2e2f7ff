"""The single node's store of open questions (``QuestionStore``) on a real file, and
``Questions`` on top of it: what a restart finds, the bounded list of closed questions,
undoing a change, and a file that is damaged or locked."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from roomz.server.question_rules import timeout_message
from roomz.server.question_store import (
    FILE_NAME,
    REMEMBERED_CLOSED,
    ClosedQuestion,
    OpenQuestion,
    QuestionStore,
)
from roomz.server.questions import Questions
from roomz.server.rich_messages import Refused, question_fields
from roomz.server.settings import SettingsError
from roomz.server.unavailable import StoreUnavailable

from .test_questions_restart import refusing_writes

ALICE = "alice@example.com"
ASKER = {"id": f"user:{ALICE}", "email": ALICE, "display_name": "Bot"}
DATA = question_fields({"question": "Deploy?", "default": "2", "timeout": 60,
                        "answers": [{"id": "1", "label": "yes"}, {"id": "2", "label": "no"}]})
POLL = {**DATA, "keep_open": True}


def question(number: int, *, data: dict[str, Any] = DATA, deadline: float = 0.0,
             answered_by: set[str] | None = None) -> OpenQuestion:
    return OpenQuestion(f"q{number}", ALICE, ASKER, "connection-1", data,
                        deadline or time.time() + 60, answered_by or set())


def answer(question_id: str, *chosen: str) -> dict[str, Any]:
    """The checked fields of an answer to ``question_id``."""
    return {"answer_to": question_id, "answers": list(chosen or ["1"])}


def test_open_and_closed_questions_are_found_again_on_reopening(tmp_path: Path) -> None:
    """What answering or timing a question out needs comes back as it went in; a closed
    question comes back as closed, with why."""
    store = QuestionStore(tmp_path)
    assert store.open() == ([], [])
    poll = question(1, data=POLL, answered_by={"connection-2", "connection-3"})
    store.keep_open(poll)
    store.keep_open(question(2))
    store.keep_closed(question(2), "answered already")
    store.close()
    assert store.open() == ([poll], [ClosedQuestion("q2", ALICE, "answered already")])
    store.close()


def test_only_the_newest_closed_questions_are_remembered(tmp_path: Path) -> None:
    store = QuestionStore(tmp_path)
    store.open()
    for number in range(REMEMBERED_CLOSED + 5):
        store.keep_closed(question(number), "it timed out")
    store.close()
    _, closed = store.open()
    assert [c.id for c in closed] == [f"q{n}" for n in range(5, REMEMBERED_CLOSED + 5)]
    store.close()


def test_a_question_kept_open_again_is_no_longer_closed_and_one_forgotten_is_gone(
        tmp_path: Path) -> None:
    """What undoing an answer and withdrawing a question do to the file."""
    store = QuestionStore(tmp_path)
    store.open()
    store.keep_closed(question(1), "answered already")
    store.keep_open(question(1))
    store.keep_open(question(2))
    store.forget("q2")
    store.close()
    opened, closed = store.open()
    assert ([q.id for q in opened], closed) == (["q1"], [])
    store.close()


def test_a_damaged_file_is_refused_at_start_with_its_name(tmp_path: Path) -> None:
    """Not a database, or a row that is not ours: SettingsError naming the file (the
    server says it in one line and does not start)."""
    path = tmp_path / FILE_NAME
    path.write_bytes(b"not a database, " * 512)
    with pytest.raises(SettingsError, match=f"cannot keep open questions in {path}: "
                                            "file is not a database"):
        QuestionStore(tmp_path).open()
    path.unlink()
    store = QuestionStore(tmp_path)
    store.open()
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO open_questions VALUES ('q1', ?, 'not json', 'c', '{}', '[]', 0)",
               (ALICE,))
    db.close()
    with pytest.raises(SettingsError, match=f"cannot read open questions in {path}: "):
        store.open()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write a read-only file")
def test_a_read_only_file_is_refused_at_start_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    store = QuestionStore(tmp_path)
    store.open()
    store.close()
    path.chmod(0o400)
    with pytest.raises(SettingsError, match=f"cannot keep open questions in {path}: "
                                            "Permission denied"):
        store.open()


def test_the_file_is_the_servers_alone_while_open(tmp_path: Path) -> None:
    """No other process can take the write lock of an open store (it could keep the
    server's event loop waiting for it), nor read it."""
    store = QuestionStore(tmp_path)
    store.open()
    store.keep_open(question(1))
    other = sqlite3.connect(tmp_path / FILE_NAME, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        store.close()


def test_a_failing_write_is_the_store_being_unavailable_and_nothing_changes(
        tmp_path: Path) -> None:
    """The file refuses writes (as a full disk would): each change raises StoreUnavailable
    naming the file (the server answers "try again shortly") and the file is as it was."""
    path = tmp_path / FILE_NAME
    store = QuestionStore(tmp_path)
    store.open()
    store.keep_open(question(1))
    with refusing_writes(store):
        unavailable = pytest.raises(
            StoreUnavailable, match=f"open questions in {path}: attempt to write a readonly")
        with unavailable:
            store.keep_closed(question(1), "answered already")
        with unavailable:
            store.keep_open(question(2))
        with unavailable:
            store.forget("q1")
    store.close()
    opened, closed = store.open()
    assert ([q.id for q in opened], closed) == (["q1"], [])
    store.close()


class Delivered:
    """The ``deliver`` of :class:`Questions`: records each message, so a test can wait."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, email: str, event: dict[str, Any]) -> None:
        self.messages.append(event)
        self.arrived.set()


async def test_a_deadline_that_passed_while_stopped_times_out_at_once_on_opening(
        tmp_path: Path) -> None:
    """A question whose deadline passed while the server was down times out as Questions
    opens, in the asker's name, with the default; then the file says it is closed. One
    still within its time stays open."""
    store = QuestionStore(tmp_path)
    store.open()
    store.keep_open(question(1, deadline=time.time() - 30))
    store.keep_open(question(2))
    store.close()
    delivered = Delivered()
    questions = Questions(delivered, store)
    await questions.open()
    await asyncio.wait_for(delivered.arrived.wait(), 5)
    (timeout,) = delivered.messages
    assert (timeout["answer_to"], timeout["answers"], timeout["timed_out"]) == ("q1", ["2"],
                                                                               True)
    assert (timeout["user"], timeout["connection_id"]) == (ASKER, "connection-1")
    with pytest.raises(Refused, match="Question q1 is closed: it timed out"):
        await questions.answer(ALICE, "connection-2", answer("q1"))
    await questions.close()
    opened, closed = store.open()
    assert ([q.id for q in opened], closed) == (["q2"], [ClosedQuestion("q1", ALICE,
                                                                        "it timed out")])
    store.close()


async def test_a_timeout_sent_again_after_a_crash_has_the_same_id(tmp_path: Path) -> None:
    """A server stopped after sending a question's timeout but before recording it closed
    sends it again when it starts: under the same message id, so clients show it once."""
    store = QuestionStore(tmp_path)
    store.open()
    store.keep_open(question(1, deadline=time.time() - 30))
    store.close()
    sent: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def sent_then_stopped(email: str, event: dict[str, Any]) -> None:
        sent.append(event)
        arrived.set()
        await asyncio.Event().wait()  # the server stops here, before the record

    for _ in range(2):
        arrived.clear()
        questions = Questions(sent_then_stopped, store)
        await questions.open()
        await asyncio.wait_for(arrived.wait(), 5)
        await questions.close()
    first, again = sent
    assert first["id"] == again["id"] and first["answer_to"] == again["answer_to"] == "q1"
    assert first["id"] != timeout_message(question(2))["id"]


async def test_a_polls_answers_are_remembered_across_a_restart(tmp_path: Path) -> None:
    """keep_open: a connection id that answered before the restart is still refused (409)
    after it; another answers. (Over the wire every connection is new after a restart, so
    only this level can show it.)"""
    store = QuestionStore(tmp_path)
    questions = Questions(Delivered(), store)
    await questions.open()
    await questions.ask("q1", ALICE, ASKER, "connection-1", POLL)
    await questions.answer(ALICE, "connection-2", answer("q1"))
    await questions.close()
    questions = Questions(Delivered(), store)
    await questions.open()
    with pytest.raises(Refused, match="You answered question q1 already") as refused:
        await questions.answer(ALICE, "connection-2", answer("q1"))
    assert refused.value.answer["code"] == 409
    await questions.answer(ALICE, "connection-3", answer("q1"))
    await questions.close()


async def test_undone_changes_are_undone_in_memory_and_in_the_file(tmp_path: Path) -> None:
    """What the chat does when a message that asks or answers cannot be kept in the history:
    a withdrawn question is unknown, an answer taken back leaves its question open (a
    poll's connection may answer again), here and after a restart."""
    store = QuestionStore(tmp_path)
    questions = Questions(Delivered(), store)
    await questions.open()
    withdraw = await questions.ask("q1", ALICE, ASKER, "connection-1", DATA)
    await withdraw()
    with pytest.raises(Refused, match="Unknown question q1"):
        await questions.answer(ALICE, "connection-2", answer("q1"))
    await questions.ask("q2", ALICE, ASKER, "connection-1", DATA)
    await (await questions.answer(ALICE, "connection-2", answer("q2")))()
    await questions.ask("q3", ALICE, ASKER, "connection-1", POLL)
    await (await questions.answer(ALICE, "connection-2", answer("q3")))()
    await questions.close()
    questions = Questions(Delivered(), store)
    await questions.open()
    with pytest.raises(Refused, match="Unknown question q1"):
        await questions.answer(ALICE, "connection-2", answer("q1"))
    await questions.answer(ALICE, "connection-2", answer("q2"))
    await questions.answer(ALICE, "connection-2", answer("q3"))
    with pytest.raises(Refused, match="You answered question q3 already"):
        await questions.answer(ALICE, "connection-2", answer("q3"))
    await questions.close()


async def test_a_question_never_waits_longer_than_its_timeout_after_a_restart(
        tmp_path: Path) -> None:
    """The wall clock is behind when the server starts again (a board without a battery
    clock, before NTP corrects it): a 1 s question's deadline looks an hour away. It has
    never more than its timeout left, and times out within it."""
    data = question_fields({"question": "Deploy?", "timeout": 1,
                            "answers": [{"id": "1", "label": "yes"}]})
    store = QuestionStore(tmp_path)
    store.open()
    store.keep_open(OpenQuestion("q1", ALICE, ASKER, "connection-1", data,
                                 deadline=time.time() + 3600))
    store.close()
    delivered = Delivered()
    questions = Questions(delivered, store)
    await questions.open()
    try:
        await asyncio.wait_for(delivered.arrived.wait(), 5)
    finally:
        await questions.close()
    assert delivered.messages[0]["answer_to"] == "q1"
