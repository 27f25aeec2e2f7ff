"""The shapes of the protocol's extensions, as the client checks them (roomz.wire).

The hostile-server tests send the documented events in wrong shapes over a real connection;
these look at the problems named for the extensions' nested shapes: ``replay``'s and
``history``'s lists of messages, and ``authenticated``'s ``history``.
"""

from __future__ import annotations

from typing import Any

import pytest

from roomz.wire import ack_problem, event_problem

USER = {"id": "user:a@example.com", "email": "a@example.com"}
MESSAGE = {"id": "m1", "user": USER, "content": "hi", "timestamp": "2026-12-01T00:00:00Z"}
GREETING = {"user": USER, "channel": "user:a@example.com", "server_time": "now"}


@pytest.mark.parametrize(("data", "problem"), [
    ({"messages": [MESSAGE, MESSAGE]}, None),
    ({"messages": []}, None),
    ({"messages": "m1"}, "'messages' must be an array, got a string"),
    ({"messages": [MESSAGE, {**MESSAGE, "content": 5}]},
     "'messages[1].content' must be a string, got an integer"),
    ({"messages": [{**MESSAGE, "user": {"id": "u"}}]}, "'messages[0].user.email' is missing"),
    ({"messages": [MESSAGE, None]}, "'messages[1]' must be an object, got null"),
])
def test_replay_names_the_message_that_is_wrong(data: Any, problem: str | None) -> None:
    assert event_problem("replay", (data,)) == problem


def test_history_acknowledgement_holds_messages() -> None:
    assert ack_problem("history", {"status": "ok", "messages": [MESSAGE]}) is None
    assert ack_problem("history", {"status": "ok", "messages": [{"id": 1}]}) \
        == "'messages[0].id' must be a string, got an integer"


@pytest.mark.parametrize(("history", "problem"), [
    ({"messages": 1000, "missed": 3, "complete": True, "cursor": "x.3"}, None),
    ({"messages": 1000}, None),
    ([1000], "'history' must be an object, got an array"),
    ({"messages": 1000, "complete": "yes"}, "'history.complete' must be a boolean, got a string"),
    ({"missed": 3}, "'history.messages' is missing"),
])
def test_authenticated_history_is_checked_when_present(history: Any,
                                                        problem: str | None) -> None:
    assert event_problem("authenticated", ({**GREETING, "history": history},)) == problem
    assert event_problem("authenticated", (GREETING,)) is None
