"""Someone plants or reads the files that hold secrets: the session cache, the server's
generated JWT secret, the terminal's history.

Each is a private file (``roomz/private_files.py``): written through a new temporary file
that no planted link can redirect, refused when it is a link, another user's, or writable
by others, or when its directory is shared (another user's, or sticky like /tmp) and
writable by others; made 0600 with a warning when it is merely readable by others. A
directory of ours that others may write to, as ``mkdir`` under umask 002 leaves it, is
made 0700 with a warning; so is a history file of any mode (it only feeds suggestions).
The history never keeps a ``/token`` line.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

import pexpect
import pytest
from prompt_toolkit.history import FileHistory, InMemoryHistory

from roomz import AsyncClient, AuthenticationError, ConnectionState
from roomz.cli.history import PrivateHistory, history_file
from roomz.private_files import PrivateFileError, read_text, write_text
from roomz.server.local import LocalServer
from roomz.server.settings import ServerSettings, SettingsError, load_or_create_secret
from roomz.session_cache import server_key
from tests.cli.helpers import (
    at_prompt,
    cli_env,
    expect_answering,
    open_terminal,
)
from tests.server.proc import ServerProcess, run_command

from .hostile_server import SENTINEL, hostile_server

TIMEOUT = 5.0
EMAIL = "alice@example.com"
MALLORY = "mallory@example.com"
SOMEONE_ELSE = 65534  # "nobody"
KNOWN_SECRET = "a-secret-that-mallory-knows-" + "x" * 20

needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="only root can give a file to another user")


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def directory(path: Path, permissions: int = 0o700) -> Path:
    """``path`` made a directory with exactly ``permissions``, whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, permissions)
    return path


def plant_session(path: Path, server_url: str, session: str, permissions: int = 0o600) -> Path:
    """Write a session cache holding ``session`` at ``path``, as someone else could."""
    path.write_text(json.dumps({"version": 1, "sessions": {
        server_key(server_url): {"session_token": session}}}), encoding="utf-8")
    os.chmod(path, permissions)
    return path


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """Log lines at WARNING or above that mention ``text``."""
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]


async def user_from_cache(server: LocalServer, cache: Path) -> dict[str, Any] | None:
    """Who a client that has only ``cache`` connects as (it is disconnected again)."""
    client = AsyncClient(server.url, session_cache_file=cache)
    try:
        await asyncio.wait_for(client.connect(), TIMEOUT)
        return client.user
    finally:
        await asyncio.wait_for(client.disconnect(), TIMEOUT)


# -- the session cache ----------------------------------------------------------------------

async def test_a_session_planted_in_a_world_writable_directory_is_refused(
    server: LocalServer, tmp_path: Path,
) -> None:
    """Mallory leaves her session where the victim's cache is, in a directory anyone may
    write to: the victim's client refuses it, with one line naming the directory, instead
    of signing the victim in as Mallory."""
    shared = directory(tmp_path / "shared", 0o1777)
    cache = plant_session(shared / "session.json", server.url, await server.sign_in(MALLORY))

    with pytest.raises(AuthenticationError, match="group or others may write") as error:
        await user_from_cache(server, cache)
    assert str(shared) in str(error.value) and "\n" not in str(error.value)


@needs_root
async def test_a_session_cache_of_another_user_is_refused(
    server: LocalServer, tmp_path: Path,
) -> None:
    """A cache file that belongs to another user is refused, even in our own directory."""
    cache = plant_session(directory(tmp_path / "cache") / "session.json", server.url,
                          await server.sign_in(MALLORY))
    os.chown(cache, SOMEONE_ELSE, SOMEONE_ELSE)

    with pytest.raises(AuthenticationError, match="belongs to another user"):
        await user_from_cache(server, cache)


async def test_a_session_cache_that_is_a_link_is_refused(
    server: LocalServer, tmp_path: Path,
) -> None:
    """A symbolic link where the cache should be is never followed."""
    elsewhere = plant_session(directory(tmp_path / "mallory") / "session.json", server.url,
                              await server.sign_in(MALLORY))
    cache = directory(tmp_path / "cache") / "session.json"
    cache.symlink_to(elsewhere)

    with pytest.raises(AuthenticationError, match="symbolic link"):
        await user_from_cache(server, cache)


async def test_a_session_cache_others_may_write_to_is_refused(
    server: LocalServer, tmp_path: Path,
) -> None:
    """A cache file anyone could have rewritten is refused."""
    cache = plant_session(directory(tmp_path / "cache") / "session.json", server.url,
                          await server.sign_in(MALLORY), permissions=0o666)

    with pytest.raises(AuthenticationError, match="group or others may write"):
        await user_from_cache(server, cache)


async def test_a_session_cache_others_may_read_is_made_private_with_a_warning(
    server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A 0644 cache of ours is still ours: it is used, made 0600, and the user is told."""
    caplog.set_level(logging.WARNING)
    cache = plant_session(directory(tmp_path / "cache") / "session.json", server.url,
                          await server.sign_in(EMAIL), permissions=0o644)

    user = await user_from_cache(server, cache)

    assert user is not None and user["email"] == EMAIL
    assert mode(cache) == 0o600
    assert len(warnings_about(caplog, str(cache))) == 1, caplog.text


async def test_a_cache_directory_of_ours_that_others_may_write_to_is_made_private(
    server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Our own cache directory, 0775 as mkdir under umask 002 left it: the session in it is
    used (the file itself is checked), the directory is made 0700, one warning says so."""
    caplog.set_level(logging.WARNING)
    ours = directory(tmp_path / "cache", 0o775)
    cache = plant_session(ours / "session.json", server.url, await server.sign_in(EMAIL))

    user = await user_from_cache(server, cache)

    assert user is not None and user["email"] == EMAIL
    assert mode(ours) == 0o700
    lines = warnings_about(caplog, str(ours))
    assert len(lines) == 1 and "0775" in lines[0] and "0700" in lines[0], caplog.text


@needs_root
async def test_a_writable_directory_of_another_user_is_refused_and_left_alone(
    server: LocalServer, tmp_path: Path,
) -> None:
    """A 0777 directory that belongs to someone else is refused and never chmod-ed."""
    theirs = directory(tmp_path / "theirs", 0o777)
    cache = plant_session(theirs / "session.json", server.url, await server.sign_in(EMAIL))
    os.chown(theirs, SOMEONE_ELSE, SOMEONE_ELSE)

    with pytest.raises(AuthenticationError, match="belongs to another user"):
        await user_from_cache(server, cache)
    assert mode(theirs) == 0o777


async def test_a_cache_that_cannot_be_made_private_is_used_with_a_warning(
    server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 0644 cache on a file system that refuses chmod (read-only): connect() still signs
    in with it, and a warning says the file could not be made 0600; clearing the session
    when the file cannot be deleted is a warning too. Neither raises a bare OSError."""
    caplog.set_level(logging.WARNING)
    cache = plant_session(directory(tmp_path / "cache") / "session.json", server.url,
                          await server.sign_in(EMAIL), permissions=0o644)

    def read_only(*args: Any, **options: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "fchmod", read_only)
    user = await user_from_cache(server, cache)
    monkeypatch.setattr(Path, "unlink", read_only)
    AsyncClient(server.url, session_cache_file=cache).clear_cached_session()
    monkeypatch.undo()

    assert user is not None and user["email"] == EMAIL
    assert mode(cache) == 0o644 and cache.exists()
    assert len(warnings_about(caplog, "cannot be made 0600")) == 2, caplog.text  # two reads
    left = warnings_about(caplog, "is left as it is")
    assert len(left) == 1 and "Read-only file system" in left[0], caplog.text


async def test_signing_in_never_writes_a_session_into_a_world_writable_directory(
    server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """With the cache in a shared directory anyone may write to (sticky, like /tmp),
    signing in with a token still works, the session is not written there, and one
    warning says why."""
    caplog.set_level(logging.WARNING)
    shared = directory(tmp_path / "shared", 0o1777)
    link = await server.request_link(EMAIL)
    client = AsyncClient(server.url, session_cache_file=shared / "session.json")
    try:
        await asyncio.wait_for(client.connect(link.token), TIMEOUT)
        assert client.connected
    finally:
        await asyncio.wait_for(client.disconnect(), TIMEOUT)
    assert list(shared.iterdir()) == []
    assert len(warnings_about(caplog, "the session is not kept")) == 1, caplog.text


async def test_the_terminal_says_in_one_line_why_it_will_not_use_the_cache(
    server: LocalServer, tmp_path: Path,
) -> None:
    """roomz-cli with a planted cache: one warning line naming the directory, no sign-in."""
    shared = directory(tmp_path / "shared", 0o1777)
    cache = plant_session(shared / "session.json", server.url, await server.sign_in(MALLORY))
    async with open_terminal(server.url, tmp_path, session_file=cache) as term:
        line = await term.wait_for("refusing to keep the session cache")
        assert str(shared) in "".join(fragment[1] for fragment in line)
        assert term.app.client.connection_state is ConnectionState.DISCONNECTED


# -- the server's generated secret -------------------------------------------------------------

def test_a_link_at_the_secrets_temporary_file_is_not_followed(tmp_path: Path) -> None:
    """A symbolic link planted where the secret used to be written first: the generated
    secret never lands in the file it points to."""
    victim = tmp_path / "someone-elses-file"
    victim.write_text("theirs\n")
    os.chmod(victim, 0o644)
    state = directory(tmp_path / "state")
    (state / "jwt_secret.tmp").symlink_to(victim)

    secret = load_or_create_secret(state)

    assert victim.read_text() == "theirs\n" and mode(victim) == 0o644
    assert (state / "jwt_secret").read_text().strip() == secret
    assert mode(state / "jwt_secret") == 0o600
    assert {p.name for p in state.iterdir()} == {"jwt_secret", "jwt_secret.tmp"}


def test_a_secret_others_may_read_is_made_private_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """An existing 0644 secret is kept (sessions stay valid), made 0600, and logged."""
    caplog.set_level(logging.WARNING)
    state = directory(tmp_path / "state")
    (state / "jwt_secret").write_text(KNOWN_SECRET + "\n")
    os.chmod(state / "jwt_secret", 0o644)

    assert load_or_create_secret(state) == KNOWN_SECRET

    assert mode(state / "jwt_secret") == 0o600
    lines = warnings_about(caplog, str(state / "jwt_secret"))
    assert len(lines) == 1 and "0644" in lines[0], caplog.text


@pytest.mark.parametrize("plant", ["symlink", "writable-by-others", "shared-directory"])
def test_an_unsafe_secret_is_refused_in_one_line(tmp_path: Path, plant: str) -> None:
    """A secret that is a link (to a secret someone knows), that others may write to, or
    in a shared directory others may write to: SettingsError, one line, nothing replaced."""
    state = directory(tmp_path / "state")
    known = tmp_path / "known"
    known.write_text(KNOWN_SECRET + "\n")
    if plant == "symlink":
        (state / "jwt_secret").symlink_to(known)
    elif plant == "writable-by-others":
        (state / "jwt_secret").write_text(KNOWN_SECRET + "\n")
        os.chmod(state / "jwt_secret", 0o666)
    else:
        (state / "jwt_secret").write_text(KNOWN_SECRET + "\n")
        os.chmod(state / "jwt_secret", 0o600)
        os.chmod(state, 0o1777)

    with pytest.raises(SettingsError) as error:
        ServerSettings(state_dir=state).checked()

    assert str(state) in str(error.value) and "\n" not in str(error.value)
    assert known.read_text() == KNOWN_SECRET + "\n"


@needs_root
def test_a_secret_of_another_user_is_refused(tmp_path: Path) -> None:
    """A secret file that belongs to another user is refused."""
    state = directory(tmp_path / "state")
    (state / "jwt_secret").write_text(KNOWN_SECRET + "\n")
    os.chmod(state / "jwt_secret", 0o600)
    os.chown(state / "jwt_secret", SOMEONE_ELSE, SOMEONE_ELSE)

    with pytest.raises(SettingsError, match="belongs to another user"):
        load_or_create_secret(state)


def test_roomz_server_refuses_a_shared_state_dir_others_may_write_to(tmp_path: Path) -> None:
    """The real command, its state dir sticky like /tmp: exit status 2 and one line naming
    the directory."""
    state = directory(tmp_path / "roomz", 0o1777)

    done = run_command("--port", "0", state_home=tmp_path)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(state) in lines[0] and "may write" in lines[0], lines
    assert not (state / "jwt_secret").exists()


async def test_roomz_server_repairs_a_readable_secret_and_says_so(tmp_path: Path) -> None:
    """The real command with a 0644 secret: it starts with that secret, now 0600, and its
    log says the file was readable by others."""
    state = directory(tmp_path / "roomz")
    (state / "jwt_secret").write_text(KNOWN_SECRET + "\n")
    os.chmod(state / "jwt_secret", 0o644)
    async with ServerProcess(state_home=tmp_path) as proc:
        await proc.wait_for_line(r"readable by group or others \(mode 0644\)")
        assert mode(state / "jwt_secret") == 0o600
        assert (state / "jwt_secret").read_text().strip() == KNOWN_SECRET


# -- the terminal's history ---------------------------------------------------------------------

@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_STATE_HOME`` for the test: the history lives in ``roomz/history`` under it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def old_history(path: Path, *entries: str, permissions: int = 0o644) -> None:
    """A history file as earlier versions left it (plain ``FileHistory``; umask 022 gives
    0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    history = FileHistory(str(path))
    for entry in entries:
        history.store_string(entry)
    os.chmod(path, permissions)


def test_the_history_file_is_created_private(state_home: Path) -> None:
    """The first line typed creates the history file 0600, whatever the umask."""
    old = os.umask(0)
    try:
        history = history_file()
        history.append_string("hello")
    finally:
        os.umask(old)
    assert mode(state_home / "roomz" / "history") == 0o600
    assert mode(state_home / "roomz") == 0o700


def test_a_looser_history_file_is_repaired_with_one_line(
    state_home: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """An existing 0644 history is made 0600, its lines kept, and one warning says so."""
    caplog.set_level(logging.WARNING)
    path = state_home / "roomz" / "history"
    old_history(path, "hello", f"/login {EMAIL}")

    history = history_file()

    assert mode(path) == 0o600
    assert list(history.load_history_strings()) == [f"/login {EMAIL}", "hello"]
    assert len(warnings_about(caplog, str(path))) == 1, caplog.text


def test_a_history_an_older_version_left_under_umask_002_is_repaired_and_loads(
    state_home: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Older versions made the state directory with plain mkdir: under umask 002 that is a
    0775 directory with a 0664 history. Both are made private, one warning line each, and
    the history's entries are still there."""
    caplog.set_level(logging.WARNING)
    path = state_home / "roomz" / "history"
    old_history(path, "hello", f"/login {EMAIL}", permissions=0o664)
    os.chmod(path.parent, 0o775)

    history = history_file()

    assert isinstance(history, PrivateHistory)
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert list(history.load_history_strings()) == [f"/login {EMAIL}", "hello"]
    assert len(warnings_about(caplog, "0775")) == len(warnings_about(caplog, "0664")) == 1, \
        caplog.text


def test_a_history_in_a_shared_directory_stays_in_memory_and_the_directory_is_left_alone(
    state_home: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A state directory with the sticky bit that anyone may write to (like /tmp) is not
    ours to lock: this run's history stays in memory, one warning says why."""
    caplog.set_level(logging.WARNING)
    shared = directory(state_home / "roomz", 0o1777)

    history = history_file()
    history.append_string("hello")

    assert isinstance(history, InMemoryHistory)
    assert mode(shared) == 0o1777 and list(shared.iterdir()) == []
    assert len(warnings_about(caplog, "may write")) == 1, caplog.text


def test_token_lines_of_older_versions_are_removed_with_one_line(
    state_home: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """/token lines an older version kept are removed at start; /login lines stay, since
    completion offers their emails."""
    caplog.set_level(logging.WARNING)
    path = state_home / "roomz" / "history"
    old_history(path, "hello", "/token first-secret", f"/login {EMAIL}", "  /token second",
                "/tokens are fine\nin a message", "bye")

    history = history_file()

    text = path.read_text(encoding="utf-8")
    assert "secret" not in text and "second" not in text, text
    assert list(history.load_history_strings()) == [
        "bye", "/tokens are fine\nin a message", f"/login {EMAIL}", "hello"]
    assert len(warnings_about(caplog, "removed 2 /token line(s)")) == 1, caplog.text


async def test_the_terminal_never_keeps_a_token_line(
    server: LocalServer, tmp_path: Path, state_home: Path,
) -> None:
    """Typed in the terminal, /token TOKEN signs in but is kept neither in the file nor
    in the history the arrow keys and suggestions use; /login and messages are kept."""
    path = state_home / "roomz" / "history"
    async with open_terminal(server.url, tmp_path, history=history_file()) as term:
        await term.sign_in(server, EMAIL)
        await term.command("hello there", "hello there")
        kept = term.app.history.get_strings()
    text = path.read_text(encoding="utf-8")
    assert f"+/login {EMAIL}" in text and "+hello there" in text
    assert "/token" not in text and not any(s.startswith("/token") for s in kept), (text, kept)
    assert mode(path) == 0o600


def test_a_history_file_that_is_a_link_is_refused_and_not_written_through(
    state_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A link planted as the history file: this run's history stays in memory, one warning
    says so, and the file it points to is untouched."""
    caplog.set_level(logging.WARNING)
    victim = tmp_path / "victim"
    victim.write_text("theirs\n")
    directory(state_home / "roomz")
    (state_home / "roomz" / "history").symlink_to(victim)

    history = history_file()
    history.append_string("hello")

    assert isinstance(history, InMemoryHistory)
    assert victim.read_text() == "theirs\n"
    assert len(warnings_about(caplog, "symbolic link")) == 1, caplog.text


def test_roomz_cli_history_is_private_and_without_the_token(
    tmp_path: Path, children: list[pexpect.spawn],
) -> None:
    """The real roomz-cli: after /token, a message and /quit, the history file in the
    user's state dir is 0600 and has the message but not the token."""
    with hostile_server(script=[]) as server:
        child = at_prompt(tmp_path, server.url, children)
        child.send("/token the-secret-token\r")
        expect_answering(child, re.escape(SENTINEL))
        child.send("hello\r")
        expect_answering(child, "hello")
        child.send("/quit\r")
        expect_answering(child, pexpect.EOF)
        child.close()
    assert child.exitstatus == 0
    path = Path(cli_env(tmp_path)["XDG_STATE_HOME"]) / "roomz" / "history"
    text = path.read_text(encoding="utf-8")
    assert "+hello\n" in text and "the-secret-token" not in text, text
    assert mode(path) == 0o600


# -- the helper itself ----------------------------------------------------------------------

def test_a_private_file_is_written_whole_without_leftovers(tmp_path: Path) -> None:
    """write_text creates the directory 0700 and the file 0600, whatever the umask, and
    leaves no temporary file behind."""
    old = os.umask(0)
    try:
        write_text(tmp_path / "new" / "file", "content", "test file")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "file") == 0o600
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["file"]
    assert read_text(tmp_path / "new" / "file", "test file") == "content"


def test_a_fifo_planted_as_a_private_file_is_refused_at_once(tmp_path: Path) -> None:
    """A named pipe where a private file should be does not hang the reader."""
    os.mkfifo(tmp_path / "file", 0o600)
    with pytest.raises(PrivateFileError, match="not a regular file"):
        read_text(tmp_path / "file", "test file")
    with pytest.raises(PrivateFileError, match="not a regular file"):
        PrivateHistory(tmp_path / "file")
