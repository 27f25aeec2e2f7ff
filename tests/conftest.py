"""Fixtures shared by every test: a real Roomz server on a loopback port."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Nothing a test does may touch the real user's state, cache or data directories.
_HOME = tempfile.mkdtemp(prefix="roomz-test-home-")
for _var in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
    os.environ[_var] = os.path.join(_HOME, _var.lower())

from roomz.server.local import LocalServer  # noqa: E402
from tests.server.proc import RestartableServer  # noqa: E402


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    """A Roomz server on 127.0.0.1 with a free port; ``server.links`` holds the magic links."""
    async with LocalServer() as running:
        yield running


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[RestartableServer]:
    """A ``roomz-server`` that a test can SIGKILL and start again on the same port and secret."""
    async with RestartableServer(tmp_path / "state") as servers:
        yield servers
