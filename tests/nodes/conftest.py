"""Fixtures for several server nodes: a real Redis and ``roomz-server`` processes on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.server.proc import ServerProcess

from .redis_proc import RedisProcess

SECRET = "a-shared-secret-of-every-node-0123456789"


@pytest.fixture
async def redis() -> AsyncIterator[RedisProcess]:
    """A fresh redis-server on a free loopback port."""
    async with RedisProcess() as running:
        yield running


@pytest.fixture
def node(tmp_path: Path, redis: RedisProcess) -> Callable[..., ServerProcess]:
    """Makes ``roomz-server --redis-url`` processes sharing one secret: ``async with node():``."""
    def make(*args: str, **env: Any) -> ServerProcess:
        return ServerProcess("--redis-url", redis.url, *args, state_home=tmp_path,
                             env={"JWT_SECRET_KEY": SECRET, **env})
    return make
