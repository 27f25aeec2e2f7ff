"""Fixtures of the terminal's tests that drive ``roomz-cli`` in a pseudo-terminal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .screen import Screen


@pytest.fixture
def screens() -> Iterator[list[Screen]]:
    """Screens of the roomz-cli processes a test starts; killed if one is left running."""
    started: list[Screen] = []
    yield started
    for screen in started:
        if screen.child.isalive():
            screen.child.terminate(force=True)
