"""The questions the terminal has seen, and what a typed line answers.

While a question is open, a line that is one of its answer numbers (``2``; ``1 3`` for a
multi-select one; ``3 my own text`` for an answer that takes text), or exactly one of its
answers (Tab completes them), answers the latest open question instead of going out as a
message. A question closes at its first answer, or at its timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from roomz.message import Message
from roomz.questions import Question
from roomz.recent_ids import RecentIds

from .render import visible

KNOWN_QUESTIONS = 256  # questions remembered, to name them beside their answers
_NUMBERED = re.compile(r"^(\d+)(?:\s+(.+))?$", re.DOTALL)
_NUMBERS = re.compile(r"^\d+(?:[\s,]+\d+)*$")


@dataclass(frozen=True)
class Reply:
    """A typed line read as an answer: to which question, which choices, what free text."""

    question: Question
    chosen: list[str]  # choice ids
    free_text: str | None = None


class OpenQuestions:
    """Questions seen lately, and those still open, the latest last."""

    def __init__(self) -> None:
        self.known: RecentIds[Question] = RecentIds(KNOWN_QUESTIONS)
        self.open: dict[str, Question] = {}

    def heard(self, message: Message) -> None:
        """Note a question, or an answer or timeout that closes one."""
        question = message.question
        if question is not None:
            self.known.remember(question.id, question)
            self.open[question.id] = question
        elif message.answer_to is not None:
            asked = self.open.get(message.answer_to)
            if asked is not None and (message.timed_out or not asked.keep_open):
                del self.open[message.answer_to]

    def answered(self, question: Question) -> None:
        """This terminal answered ``question``: one answer per connection."""
        self.open.pop(question.id, None)

    def latest(self) -> Question | None:
        """The question typed lines answer: the last one asked that is still open."""
        return next(reversed(self.open.values()), None)

    def reply_for(self, text: str) -> Reply | None:
        """What ``text`` answers, or None when it is no answer (then it is a message)."""
        question = self.latest()
        if question is None:
            return None
        text = text.strip()
        choices = question.choices
        if question.multi_select and _NUMBERS.match(text):
            numbers = [int(n) for n in re.split(r"[\s,]+", text)]
            if all(1 <= n <= len(choices) for n in numbers):
                return Reply(question, list(dict.fromkeys(choices[n - 1].id for n in numbers)))
            return None
        if match := _NUMBERED.match(text):
            number, free_text = int(match.group(1)), match.group(2)
            if 1 <= number <= len(choices) and (free_text is None
                                                or choices[number - 1].free_text):
                return Reply(question, [choices[number - 1].id], free_text)
            return None
        choice = question.choice(text) if text else None
        return Reply(question, [choice.id]) if choice is not None else None


class AnswerCompleter(Completer):
    """Tab completes the answers of the latest open question on a line that is no command."""

    def __init__(self, questions: OpenQuestions) -> None:
        self.questions = questions

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        """The open question's answers that start with what was typed."""
        text = document.text_before_cursor
        question = self.questions.latest()
        if question is None or text.startswith("/"):
            return
        for number, choice in enumerate(question.choices, 1):
            if choice.label.casefold().startswith(text.casefold()):
                yield Completion(choice.label, start_position=-len(text),
                                 display=visible(choice.label),
                                 display_meta=f"answer {number} to “{visible(question.text[:40])}”")
