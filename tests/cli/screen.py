"""What a person sees on the screen of ``roomz-cli``: its output drawn by a terminal emulator.

``Screen(child)`` feeds everything a ``pexpect`` child writes to pyte (a VT100 emulator),
which answers the prompt's cursor-position requests as a terminal does. ``wait_for()``
reads until a line on the screen matches; ``lines`` is the screen as text, ``toolbar``
its bottom line. ``seen`` keeps every screen drawn, for "never showed" checks.
"""

from __future__ import annotations

import re
import time

import pexpect
import pyte

from .helpers import TIMEOUT


class _Terminal(pyte.Screen):  # type: ignore[misc]
    """A pyte screen that answers the program's requests (cursor position) on its tty."""

    def __init__(self, child: pexpect.spawn, columns: int, rows: int) -> None:
        super().__init__(columns, rows)
        self.child = child

    def write_process_input(self, data: str) -> None:
        """What the terminal answers goes back to the program, as a real one's does."""
        self.child.send(data)


class Screen:
    """The screen of ``child`` (spawned with ``dimensions=(rows, columns)``)."""

    def __init__(self, child: pexpect.spawn, rows: int = 30, columns: int = 120) -> None:
        self.child = child
        self.screen = _Terminal(child, columns, rows)
        self.stream = pyte.Stream(self.screen)
        #: Every line any drawn screen had, and all the raw output, in order.
        self.seen: list[str] = []
        self.raw: list[str] = []

    def read(self, timeout: float = 0.05) -> bool:
        """Draw what the program wrote in the next ``timeout`` seconds; False at its end."""
        try:
            data = self.child.read_nonblocking(65536, timeout)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw.append(data)
        self.stream.feed(data)
        self.seen.extend(self.lines)
        return True

    @property
    def lines(self) -> list[str]:
        """The screen's lines as text, trailing spaces removed."""
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        """The screen as one text."""
        return "\n".join(self.lines).strip("\n")

    @property
    def toolbar(self) -> str:
        """The bottom line: the toolbar."""
        return self.lines[-1]

    def find(self, pattern: str) -> str | None:
        """The first line on the screen now that matches the regex ``pattern``."""
        regex = re.compile(pattern)
        return next((line for line in self.lines if regex.search(line)), None)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """The first line on the screen that matches ``pattern``, reading until one does."""
        deadline = time.monotonic() + timeout
        while (line := self.find(pattern)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"the screen:\n{self.text}")
            if not self.read():
                raise AssertionError(f"roomz-cli ended before showing {pattern!r}; "
                                     f"the screen:\n{self.text}")
        return line

    def wait_until_gone(self, pattern: str, timeout: float = TIMEOUT) -> None:
        """Read until no line on the screen matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while self.find(pattern) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} still on the screen after {timeout} s:\n"
                                     f"{self.text}")
            self.read()

    def watch(self, seconds: float) -> None:
        """Keep drawing for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.read(min(0.1, seconds)):
            pass

    def type(self, keys: str) -> None:
        """Press ``keys`` (``\\r`` is Enter)."""
        self.child.send(keys)

    def ever_showed(self, pattern: str) -> bool:
        """True when any screen drawn so far had a line matching ``pattern``."""
        regex = re.compile(pattern)
        return any(regex.search(line) for line in self.seen)

    def ended(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the program ends; its exit status."""
        deadline = time.monotonic() + timeout
        while self.read():
            if time.monotonic() > deadline:
                raise AssertionError(f"roomz-cli still runs after {timeout} s:\n{self.text}")
        self.child.close()
        status: int | None = self.child.exitstatus
        return status
