"""Where one node keeps ended sessions: ``sessions.sqlite3`` in its state directory."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from roomz.cli.embedded import embedded_server
from roomz.server import Server
from roomz.server.local import LocalServer
from roomz.server.session_records import FILE_NAME, SqliteSessionRecords
from roomz.server.settings import ServerSettings, SettingsError

HOUR = 3600


async def test_records_survive_reopening(tmp_path: Path) -> None:
    """Logged-out ids and user versions are still there when the file is opened again."""
    records = SqliteSessionRecords.in_state_dir(tmp_path)
    await records.open()
    await records.revoke("stolen", int(time.time()) + HOUR)
    await records.end_all("alice@example.com")
    await records.end_all("alice@example.com")
    await records.close()

    again = SqliteSessionRecords.in_state_dir(tmp_path)
    await again.open()
    standing = await again.standing(["stolen", "fine"], ["alice@example.com", "bob@example.com"])
    await again.close()
    assert standing.revoked == {"stolen"}
    assert (standing.version("alice@example.com"), standing.version("bob@example.com")) == (3, 1)


async def test_expired_revocations_are_purged(tmp_path: Path) -> None:
    """A revoked id whose token has expired anyway is forgotten by the purge; others stay."""
    records = SqliteSessionRecords.in_state_dir(tmp_path)
    await records.open()
    await records.revoke("old", int(time.time()) - 1)
    await records.revoke("recent", int(time.time()) + HOUR)

    assert await records.purge_expired() == 1
    assert (await records.standing(["old", "recent"], [])).revoked == {"recent"}
    await records.close()


async def test_the_file_is_private(tmp_path: Path) -> None:
    """The directory is made 0700 and the file (with its WAL files) 0600."""
    state_dir = tmp_path / "state"
    records = SqliteSessionRecords.in_state_dir(state_dir)
    await records.open()
    await records.revoke("written", int(time.time()) + HOUR)

    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    files = sorted(state_dir.iterdir())
    assert [f.name for f in files] == [FILE_NAME, f"{FILE_NAME}-shm", f"{FILE_NAME}-wal"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    await records.close()


async def test_a_symlink_in_its_place_is_refused(tmp_path: Path) -> None:
    """A symlink planted where the file goes is not followed: a one-line SettingsError."""
    elsewhere = tmp_path / "someone-elses-file"
    elsewhere.write_text("")
    (tmp_path / FILE_NAME).symlink_to(elsewhere)

    with pytest.raises(SettingsError, match=FILE_NAME) as error:
        await SqliteSessionRecords.in_state_dir(tmp_path).open()
    assert "\n" not in str(error.value)
    assert elsewhere.read_text() == ""


async def test_local_and_embedded_servers_keep_their_records_to_themselves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers for tests and the terminal's embedded one never write the user's state dir."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "user-state"))
    async with LocalServer() as server:
        await server.sign_in("alice@example.com")
        await server.server.sessions.revoke("alice@example.com")
        assert server.settings.state_dir is not None
        assert (server.settings.state_dir / FILE_NAME).exists()
    async with embedded_server("me@roomz.local"):
        pass
    assert not (tmp_path / "user-state").exists()


async def test_the_records_are_open_only_while_the_server_runs(tmp_path: Path) -> None:
    """A server that is made but never started opens nothing (so leaks nothing); a started
    one opens its records, and closes them when it stops."""
    settings = ServerSettings(jwt_secret="s" * 40, state_dir=tmp_path, port=0)
    Server(settings)
    assert not (tmp_path / FILE_NAME).exists()

    server = Server(settings)
    records = server.sessions.records
    assert isinstance(records, SqliteSessionRecords)
    async with server:
        assert (tmp_path / FILE_NAME).exists()
        assert (await records.standing(["any"], [])).revoked == frozenset()
    with pytest.raises(RuntimeError, match="not open"):
        await records.standing(["any"], [])
