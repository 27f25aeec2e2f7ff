"""Files that only their owner may read: the session cache, the terminal's history, the
server's generated secret.

The same rules for each (on POSIX systems; elsewhere files are only written atomically):

- Its directory is created 0700. An existing directory of ours that group or others may
  write to (as ``mkdir`` under umask 002 made them) is made 0700, with a warning. One that
  belongs to another user, or that has the sticky bit (a shared directory like /tmp),
  is refused if others may write to it, and never changed: it is not ours to lock.
- The file is opened without following a symbolic link, and must be a regular file that
  belongs to the current user, with no other hard link: that is what stops a file
  planted by someone else, whatever the directory was. One that others may write to is
  refused (its content may not be ours), unless its content does no harm if planted
  (``repair_writable``, the terminal's history: it only feeds suggestions); one that
  they may only read is made 0600, with a warning (it may have been read, but it is
  still ours). A repair that fails (a read-only file system) is a warning, not an error.
- It is written whole into a new temporary file beside it, then renamed over it: a reader
  never sees half a file, and a link planted at any name is never followed. The temporary
  file comes from :func:`tempfile.mkstemp` (``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0600,
  random name).

Every refusal is a :class:`PrivateFileError` whose message is one line naming the path and
what is wrong with it; callers turn it into their own error (a ``ClientError``, a
``SettingsError``).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("roomz.private_files")

POSIX = os.name == "posix"
PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # never open through a link
NO_WAIT = getattr(os, "O_NONBLOCK", 0)  # never get stuck opening a planted FIFO
READ_FLAGS = os.O_RDONLY | NO_FOLLOW | NO_WAIT
APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | NO_FOLLOW | NO_WAIT
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
OTHERS_READ = stat.S_IRGRP | stat.S_IROTH


class PrivateFileError(Exception):
    """A private file or its directory cannot be used safely; the message is one line."""


def ensure_directory(directory: Path, what: str) -> None:
    """Create ``directory`` (and its parents) with mode 0700, or check the existing one."""
    try:
        directory.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    except OSError as exc:
        raise PrivateFileError(f"cannot create the directory of the {what} {directory}: "
                               f"{exc.strerror or exc}") from exc
    check_directory(directory, what)


def check_directory(directory: Path, what: str) -> None:
    """Refuse a directory that others could plant files in, or make ours private (see the
    module docstring); a missing one is fine."""
    try:
        info = directory.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise PrivateFileError(f"cannot use the directory of the {what} {directory}: "
                               f"{exc.strerror or exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise PrivateFileError(f"cannot keep the {what} in {directory}: not a directory")
    if not POSIX:
        return
    ours = info.st_uid == os.geteuid()
    if not ours and info.st_uid != 0:
        raise PrivateFileError(f"refusing to keep the {what} in {directory}: the directory "
                               f"belongs to another user (uid {info.st_uid})")
    if not info.st_mode & OTHERS_WRITE:
        return
    refusal = (f"refusing to keep the {what} in {directory}: group or others may write to "
               f"it (mode {_mode(info)})")
    if not ours or info.st_mode & stat.S_ISVTX:  # shared on purpose: not ours to lock
        raise PrivateFileError(f"{refusal}; use a private directory")
    try:
        os.chmod(directory, PRIVATE_DIRECTORY)
    except OSError as exc:
        raise PrivateFileError(f"{refusal} and it cannot be made 0700: "
                               f"{exc.strerror or exc}") from exc
    log.warning("the directory of the %s %s was writable by group or others (mode %s); "
                "it is now 0700", what, directory, _mode(info))


def read_text(path: Path, what: str, *, repair_writable: bool = False) -> str | None:
    """The text of the private file ``path``, or None when there is none.

    Raises :class:`PrivateFileError` when it or its directory is unsafe or unreadable,
    and ``UnicodeDecodeError`` when it is not UTF-8; a file that others may read (or with
    ``repair_writable``, write) is made 0600, with a warning.
    """
    check_directory(path.parent, what)
    try:
        fd = _open_checked(path, what, READ_FLAGS, repair_writable)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    return data.decode("utf-8")


def write_text(path: Path, text: str, what: str) -> None:
    """Replace ``path`` with ``text``, atomically, as a 0600 file in a checked directory."""
    ensure_directory(path.parent, what)
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    except OSError as exc:
        raise PrivateFileError(f"cannot write the {what} {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise PrivateFileError(f"cannot write the {what} {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def append_text(path: Path, text: str, what: str, *, repair_writable: bool = False) -> None:
    """Append ``text`` to the private file ``path``, creating it 0600 if need be."""
    try:
        fd = _open_checked(path, what, APPEND_FLAGS, repair_writable)
    except FileNotFoundError as exc:
        raise PrivateFileError(f"cannot create the {what} {path}: no such directory") from exc
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(text)


def _open_checked(path: Path, what: str, flags: int, repair_writable: bool) -> int:
    """Open ``path`` without following a link and check what was opened (FileNotFoundError
    passes through)."""
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _open_error(path, what, exc) from exc
    try:
        _check_file(fd, path, what, repair_writable)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_file(fd: int, path: Path, what: str, repair_writable: bool) -> None:
    """Refuse an open file that is not ours alone; make a merely readable one 0600."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise PrivateFileError(f"refusing the {what} {path}: not a regular file")
    if not POSIX:
        return
    if info.st_uid != os.geteuid():
        raise PrivateFileError(f"refusing the {what} {path}: it belongs to another user "
                               f"(uid {info.st_uid})")
    if info.st_nlink > 1:
        raise PrivateFileError(f"refusing the {what} {path}: it has other hard links")
    if info.st_mode & OTHERS_WRITE and not repair_writable:
        raise PrivateFileError(f"refusing the {what} {path}: group or others may write to "
                               f"it (mode {_mode(info)}), so it may not hold what we wrote")
    if not info.st_mode & (OTHERS_READ | OTHERS_WRITE):
        return
    loose = "writable" if info.st_mode & OTHERS_WRITE else "readable"
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except OSError as exc:  # a read-only file system: still ours, still usable
        log.warning("the %s %s is %s by group or others (mode %s) and cannot be made "
                    "0600: %s", what, path, loose, _mode(info), exc.strerror or exc)
        return
    log.warning("the %s %s was %s by group or others (mode %s); it is now 0600",
                what, path, loose, _mode(info))


def _open_error(path: Path, what: str, exc: OSError) -> PrivateFileError:
    if exc.errno in (errno.ELOOP, errno.EMLINK) and path.is_symlink():
        return PrivateFileError(f"refusing the {what} {path}: it is a symbolic link")
    return PrivateFileError(f"cannot open the {what} {path}: {exc.strerror or exc}")


def _mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"
