"""The terminal's history file: private (mode 0600), and never holding a ``/token`` line.

A sign-in token is as good as a password until it is used, so ``/token ...`` lines are
neither written nor recalled. ``/login`` lines are kept: completion offers their emails.
The file is a private file (:mod:`roomz.private_files`), but one that others could write
to is repaired rather than refused: it only feeds suggestions. A looser one is made 0600
with a warning, and ``/token`` lines that older versions wrote are removed, with a line
saying so.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from roomz.private_files import (
    PrivateFileError,
    append_text,
    ensure_directory,
    read_text,
    write_text,
)

log = logging.getLogger("roomz.cli")

WHAT = "history file"
SECRET = re.compile(r"\s*/token(\s|$)")


def is_secret(entry: str) -> bool:
    """True for what must never be kept: a ``/token`` command."""
    return SECRET.match(entry) is not None


class PrivateHistory(FileHistory):
    """prompt_toolkit's ``FileHistory`` in the same format, kept private and without secrets.

    Raises :class:`PrivateFileError` when the file or its directory may not be used.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        self._saving = True
        ensure_directory(path.parent, WHAT)
        self._forget_secrets()

    def append_string(self, string: str) -> None:
        """Add ``string`` to the history, unless it is a secret."""
        if not is_secret(string):
            super().append_string(string)

    def store_string(self, string: str) -> None:
        """Append ``string`` to the file as ``FileHistory`` does, through a private open."""
        if is_secret(string) or not self._saving:
            return
        lines = "".join(f"+{line}\n" for line in string.split("\n"))
        try:
            append_text(self.path, f"\n# {datetime.now()}\n{lines}", WHAT, repair_writable=True)
        except PrivateFileError as exc:
            self._saving = False  # one warning, not one per line typed
            log.warning("%s; the history is no longer saved", exc)

    def _forget_secrets(self) -> None:
        """Remove the ``/token`` entries an older version kept."""
        try:
            text = read_text(self.path, WHAT, repair_writable=True)
        except ValueError:  # not UTF-8: FileHistory copes; leave it be
            return
        if text is None:
            return
        kept, removed = without_secrets(text)
        if removed:
            write_text(self.path, kept, WHAT)
            log.warning("removed %d /token line(s) from the history file %s", removed,
                        self.path)


def without_secrets(text: str) -> tuple[str, int]:
    """``text`` of a history file without its secret entries, and how many there were.

    An entry is its ``+`` lines and the comment and blank lines before them.
    """
    kept: list[str] = []
    entry: list[str] = []
    removed = 0

    def close_entry() -> None:
        nonlocal removed
        if is_secret("".join(line[1:] for line in entry if line.startswith("+"))):
            removed += 1
        else:
            kept.extend(entry)

    for line in text.splitlines(keepends=True):
        if not line.startswith("+") and any(e.startswith("+") for e in entry):
            close_entry()
            entry = []
        entry.append(line)
    close_entry()
    return "".join(kept), removed


def history_file() -> History:
    """The terminal's persistent history, in the user's state directory.

    When that file may not be used, this run's history stays in memory, with a warning.
    """
    import platformdirs

    path = Path(platformdirs.user_state_dir("roomz")) / "history"
    try:
        return PrivateHistory(path)
    except PrivateFileError as exc:
        log.warning("%s; this run's history is not saved", exc)
        return InMemoryHistory()
