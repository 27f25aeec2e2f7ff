"""Fixtures of the security tests."""

from __future__ import annotations

from collections.abc import Iterator

import pexpect
import pytest


@pytest.fixture
def children() -> Iterator[list[pexpect.spawn]]:
    """roomz-cli processes a test started (it appends them); killed if one is left running."""
    started: list[pexpect.spawn] = []
    yield started
    for child in started:
        if child.isalive():
            child.terminate(force=True)
