"""Interop fixtures: the published ``roomz==0.4.0`` lives in its own venv (same import name)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def published_python() -> Path:
    """The Python of the venv holding the published Roomz 0.4.0 (``./dev setup`` makes it)."""
    venv = Path(os.environ.get("ROOMZ_PUBLISHED_VENV", REPO / ".venv-published"))
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.fail(f"no published Roomz venv at {venv}: run ./dev setup "
                    "(or set ROOMZ_PUBLISHED_VENV)")
    return python
