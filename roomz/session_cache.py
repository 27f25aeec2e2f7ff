"""The session cache: one small JSON file of session tokens, keyed by server URL.

A session for one server is never sent to another. The file is private (see
:mod:`roomz.private_files`): written atomically, mode 0600, in a directory created 0700;
a cache that is a symbolic link, belongs to another user, may be written by others, or
lies in a shared directory others may write to is refused, since a planted session would
sign the user in as someone else.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .exceptions import SessionCacheError
from .private_files import PrivateFileError, read_text, write_text

log = logging.getLogger("roomz.client")

WHAT = "session cache"
FORMAT_VERSION = 1


def default_session_file() -> Path:
    """Where the terminal and bots keep sessions unless told otherwise (the user's cache dir)."""
    import platformdirs  # only for callers that want the default, not for every import roomz

    return Path(platformdirs.user_cache_dir("roomz")) / "session.json"


def server_key(server_url: str) -> str:
    """The cache key of a server: scheme, host and port, lower-cased, without a trailing slash."""
    parts = urlsplit(server_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path.rstrip('/')}"


class SessionCache:
    """Reads and writes the session tokens kept in ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def _read(self) -> dict[str, Any]:
        """The sessions in the file, {} without one.

        Raises :class:`PrivateFileError` when the file may not be used, and
        :class:`SessionCacheError` when it is corrupt.
        """
        try:
            text = read_text(self.path, WHAT)
            data = json.loads(text) if text is not None else {"sessions": {}}
        except ValueError as exc:  # not UTF-8, or not JSON
            raise SessionCacheError(
                f"the session cache {self.path} cannot be read ({exc}); delete it and log in again"
            ) from exc
        sessions = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(sessions, dict):
            raise SessionCacheError(
                f"the session cache {self.path} is not a Roomz session file; "
                "delete it and log in again"
            )
        return sessions

    def load(self, server_url: str) -> str | None:
        """The cached session token for ``server_url``, or None.

        Raises :class:`SessionCacheError` when the file exists but is corrupt or unreadable,
        or may not be used (see the module docstring).
        """
        try:
            entry = self._read().get(server_key(server_url))
        except PrivateFileError as exc:
            raise SessionCacheError(str(exc), detail=str(exc)) from exc
        token = entry.get("session_token") if isinstance(entry, dict) else None
        return token if isinstance(token, str) and token else None

    def save(self, server_url: str, session_token: str) -> None:
        """Keep ``session_token`` for ``server_url``; a corrupt file is replaced, with a warning.

        Raises :class:`SessionCacheError` when the cache may not be used.
        """
        try:
            try:
                sessions = self._read()
            except SessionCacheError as exc:
                log.warning("replacing the unreadable session cache: %s", exc)
                sessions = {}
            sessions[server_key(server_url)] = {"session_token": session_token}
            self._write(sessions)
        except PrivateFileError as exc:
            raise SessionCacheError(str(exc), detail=str(exc)) from exc

    def remove(self, server_url: str) -> None:
        """Forget the session for ``server_url``; the file goes when it holds no other session.

        A cache that may not be used is left alone, with a warning.
        """
        try:
            try:
                sessions = self._read()
            except SessionCacheError:
                sessions = {}
            sessions.pop(server_key(server_url), None)
            if sessions:
                self._write(sessions)
            else:
                self.path.unlink(missing_ok=True)
        except PrivateFileError as exc:
            log.warning("the session cache is left as it is: %s", exc)
        except OSError as exc:  # cannot delete it: a read-only file system, say
            log.warning("the session cache %s is left as it is: %s", self.path,
                        exc.strerror or exc)

    def _write(self, sessions: dict[str, Any]) -> None:
        write_text(self.path, json.dumps({"version": FORMAT_VERSION, "sessions": sessions},
                                         indent=1), WHAT)
