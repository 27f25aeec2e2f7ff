"""Fixtures for bot tests: the sample plugins' journal, people's connections, server processes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz_bots import Bot, Plugin, load_plugin
from roomz_bots.origins import Origins
from tests.interop.conftest import published_python  # noqa: F401  (the published server's venv)
from tests.server.proc import RestartableServer

from .headless import Cli, start_cli
from .helpers import FAST, TIMEOUT, Watcher
from .sample_plugins import JOURNAL, ticker


@pytest.fixture(autouse=True)
def clean_journal() -> Iterator[None]:
    """Every test starts with an empty journal and no jobs left from another test."""
    JOURNAL.clear()
    ticker.JOBS.clear()
    yield
    JOURNAL.clear()
    ticker.JOBS.clear()


@pytest.fixture(autouse=True)
def forget_path_plugins() -> Iterator[None]:
    """Plugins imported from files are not left in ``sys.modules`` for the next test."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("roomz_plugin_", "myplug_roomz")):
            del sys.modules[name]


@pytest.fixture
async def watchers() -> AsyncIterator[Callable[..., Any]]:
    """``await watcher(url, token)``: a connected :class:`Watcher`, disconnected at the end."""
    made: list[Watcher] = []

    async def make(url: str, token: str = "", **options: Any) -> Watcher:
        watcher = Watcher(AsyncClient(url, token, **{**FAST, **options}))
        made.append(watcher)
        await asyncio.wait_for(watcher.client.connect(), TIMEOUT * 2)
        return watcher

    yield make
    for watcher in made:
        await asyncio.wait_for(watcher.client.disconnect(), TIMEOUT)


@pytest.fixture
async def server_process(restartable: RestartableServer) -> RestartableServer:
    """A ``roomz-server`` subprocess on a fixed loopback port; restart it with ``start()``."""
    await restartable.start()
    return restartable


BotFactory = Callable[..., Any]


@pytest.fixture
async def make_bot(tmp_path: Path) -> AsyncIterator[BotFactory]:
    """``await make_bot(name, url, token, plugins, **options)``: a started bot, stopped at the end.

    ``client`` options go to its :class:`AsyncClient` (fast reconnects by default). The bots
    of a test share one :class:`Origins`, as the bots of one host do.
    """
    made: list[Bot] = []
    origins: Origins[object] = Origins()

    async def make(name: str, url: str, token: str, plugins: list[Any], *,
                   client: dict[str, Any] | None = None, **options: Any) -> Bot:
        loaded = [p if isinstance(p, Plugin) else load_plugin(p) for p in plugins]
        options.setdefault("data_dir", tmp_path / "bot-data")
        options.setdefault("origins", origins)
        bot = Bot(name, AsyncClient(url, token, **{**FAST, **(client or {})}), loaded, **options)
        made.append(bot)
        await asyncio.wait_for(bot.start(), TIMEOUT * 2)
        return bot

    yield make
    for bot in made:
        await asyncio.wait_for(bot.stop(), TIMEOUT * 3)


@pytest.fixture
async def headless() -> AsyncIterator[Callable[..., Any]]:
    """``await headless(config_path)``: ``roomz-cli --headless --config PATH`` in a
    subprocess, killed at the end if it still runs."""
    started: list[Cli] = []

    async def start(config: Path) -> Cli:
        cli = await start_cli(config)
        started.append(cli)
        return cli

    yield start
    for cli in started:
        await cli.kill()
