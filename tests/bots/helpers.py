"""Helpers for bot tests: bounded waits, a person's connection that records what it sees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from roomz import AsyncClient
from roomz_bots import Message
from roomz_bots.testing import BotHarness
from tests.events import Events
from tests.waiting import wait_until as wait_until

TIMEOUT = 5.0
FAST = {"reconnect_delay": 0.1, "max_reconnect_attempts": 50, "connection_timeout": 5.0}
SAMPLES = Path(__file__).parent / "sample_plugins"


class Watcher:
    """A person's connection whose messages are kept (:class:`tests.events.Events`) and read
    as :class:`~roomz_bots.Message`, with when each arrived."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.events = Events(client, ("message",))

    @property
    def seen(self) -> list[tuple[float, Message]]:
        """Every message seen so far, with when it arrived."""
        return [(e.at, Message(e.data)) for e in list(self.events.entries)]

    @property
    def texts(self) -> list[str]:
        """The text of every message seen so far."""
        return [m.text for _, m in self.seen]

    async def wait_for(self, match: Callable[[Message], bool], timeout: float = TIMEOUT,
                       what: str = "a message") -> Message:
        """The first message seen that ``match``es, waiting for it."""
        return Message(await self.events.wait_for("message", lambda data: match(Message(data)),
                                                  timeout=timeout, what=what))

    async def wait_for_text(self, text: str, timeout: float = TIMEOUT) -> Message:
        """The first message whose text is ``text``, waiting for it."""
        return await self.wait_for(lambda m: m.text == text, timeout, repr(text))


def messages_from(chat: BotHarness, connection_id: str | None) -> list[Message]:
    """What the harness's user saw from one connection."""
    return [m for m in chat.messages if m.connection_id == connection_id]



async def assert_no_reply(chat: BotHarness) -> None:
    """Assert the bot has said nothing since the last reply read, without sleeping: the
    bot's next message must be its answer to ``help help``, asked now.

    The bot hears messages in the order they were sent and starts answering each as it
    hears it, and a job that fell due in ``chat.advance()`` has run: anything it had to say
    before would come before that answer.
    """
    await chat.say(f"{chat.prefix}help help")
    text = (await chat.reply()).text
    assert text == f"{chat.prefix}help [command]: List every command, or explain one.", \
        f"the bot said {text!r}"
