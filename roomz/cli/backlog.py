"""What the terminal shows of the chat from before it was there (the history extension,
docs/protocol.md 3.7): the last screenful when it starts, dimmed as history, and after a
reconnect a line marking the gap before what it missed.

The client itself replays what a reconnect missed (each message once, in order: it sends
its cursor). What this adds is the reading order on the screen: messages that arrive while
what comes before them is still on its way (the greeting after a drop, the last screenful)
are held, then shown after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prompt_toolkit.formatted_text import FormattedText

from roomz import AsyncClient, ClientError
from roomz.message import Message

from .render import system_line

#: Rows of the screen that are not messages: the prompt, the toolbar, "Connected to ...".
CHROME_ROWS = 3
#: Shows one message; True: dimmed, as history.
ShowMessage = Callable[[Message, bool], None]


def dimmed(line: FormattedText) -> FormattedText:
    """``line`` shown as history: every part of it in the ``history`` style."""
    return FormattedText([(f"{part[0]} class:history", *part[1:])
                          for part in line])  # a mouse handler, if any, kept


def gap_line(history: dict[str, Any]) -> FormattedText | None:
    """The line before what a resumed connection missed, saying how many messages; None
    when it missed nothing. (When some are gone, older than the server's window, the
    client's warning says so just before, as a warning line of the terminal's log.)"""
    missed = history.get("missed")
    if not isinstance(missed, int) or missed <= 0:
        return None
    return system_line(f"— {missed} message{'' if missed == 1 else 's'} while you were away —")


class Backlog:
    """The order of what the terminal shows around a (re)connect.

    ``show(message, dimmed)`` shows a message (unless shown already), ``echo(line)`` any
    other line, ``rows()`` is the screen's height.
    """

    def __init__(self, *, show: ShowMessage, echo: Callable[[FormattedText], None],
                 rows: Callable[[], int]) -> None:
        self._show = show
        self._echo = echo
        self._rows = rows
        self._held: list[Message] | None = None  # None: messages are shown as they come
        self._fetching: asyncio.Task[None] | None = None
        self._shown_for: str | None = None  # the user whose last screenful was shown

    def arrived(self, message: Message) -> None:
        """A message from the server: shown now, or held until what comes before it is."""
        if self._held is None:
            self._show(message, False)
        else:
            self._held.append(message)

    def holds(self, message_id: str | None) -> bool:
        """True when the message ``message_id`` is held, to be shown shortly."""
        return any(message.id == message_id for message in self._held or ())

    def lost(self) -> None:
        """The connection dropped: hold what comes until its greeting, so that a replayed
        message never shows before the line that marks the gap."""
        if self._held is None:
            self._held = []

    def greeted(self, client: AsyncClient, data: dict[str, Any]) -> None:
        """``authenticated``: mark the gap, then show what was held; the first time for a
        user, fetch the last screenful of messages first."""
        history = data.get("history")
        if not isinstance(history, dict):  # a server that keeps no history
            self._release()
            return
        if (gap := gap_line(history)) is not None:
            self._echo(gap)
        email = (data.get("user") or {}).get("email")
        if email != self._shown_for:
            self._shown_for = email
            self.lost()
            self._fetching = asyncio.create_task(self._last_screenful(client))
        elif self._fetching is None or self._fetching.done():
            self._release()  # otherwise the fetch under way releases them once shown

    async def _last_screenful(self, client: AsyncClient) -> None:
        """Show the user's last messages, dimmed, then what arrived meanwhile."""
        try:
            try:
                earlier = await client.history(max(self._rows() - CHROME_ROWS, 1))
            except ClientError as exc:
                self._echo(system_line(f"Earlier messages not shown: {exc}", "warning"))
                earlier = []
            live = {message.id for message in self._held or ()}
            for data in earlier:
                message = Message(data)
                if message.id not in live:  # arrived meanwhile: shown with the live ones
                    self._show(message, True)
        finally:
            self._release()

    def _release(self) -> None:
        held, self._held = self._held or [], None
        for message in held:
            self._show(message, False)

    async def close(self) -> None:
        """Stop a fetch under way."""
        if self._fetching is not None and not self._fetching.done():
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)
