"""The session cache: one small JSON file of session tokens, keyed by server URL.

A session for one server is never sent to another. The file is written atomically,
mode 0600, in a directory created 0700.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .exceptions import AuthenticationError

log = logging.getLogger("roomz.client")

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
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AuthenticationError(
                f"the session cache {self.path} cannot be read ({exc}); delete it and log in again"
            ) from exc
        sessions = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(sessions, dict):
            raise AuthenticationError(
                f"the session cache {self.path} is not a Roomz session file; "
                "delete it and log in again"
            )
        return sessions

    def load(self, server_url: str) -> str | None:
        """The cached session token for ``server_url``, or None.

        Raises :class:`AuthenticationError` when the file exists but is corrupt or unreadable.
        """
        entry = self._read().get(server_key(server_url))
        token = entry.get("session_token") if isinstance(entry, dict) else None
        return token if isinstance(token, str) and token else None

    def save(self, server_url: str, session_token: str) -> None:
        """Keep ``session_token`` for ``server_url``; a corrupt file is replaced, with a warning."""
        try:
            sessions = self._read()
        except AuthenticationError as exc:
            log.warning("replacing the unreadable session cache: %s", exc)
            sessions = {}
        sessions[server_key(server_url)] = {"session_token": session_token}
        self._write(sessions)

    def remove(self, server_url: str) -> None:
        """Forget the session for ``server_url``; the file goes when it holds no other session."""
        try:
            sessions = self._read()
        except AuthenticationError:
            sessions = {}
        sessions.pop(server_key(server_url), None)
        if sessions:
            self._write(sessions)
        else:
            self.path.unlink(missing_ok=True)

    def _write(self, sessions: dict[str, Any]) -> None:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": FORMAT_VERSION, "sessions": sessions}, handle, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
