"""The short soak: a server (or two nodes on Redis), a headless bot runner and people left
alone through 20 s of seeded random faults; nothing lost or said twice (``soak.py``).

The seed is fixed, so a failure here replays; ``ROOMZ_SOAK_SEED=S`` picks another one, and
``./dev soak`` runs the long one with a new seed each time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .soak import Soak

SEED = int(os.environ.get("ROOMZ_SOAK_SEED", "20261202"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("nodes", [1, 2], ids=["one-node", "two-nodes-on-redis"])
async def test_a_short_soak_loses_nothing_and_says_nothing_twice(tmp_path: Path,
                                                                  nodes: int) -> None:
    report = await Soak(tmp_path, SEED, 20.0, nodes=nodes, say=print).run()
    assert report.ok, f"{report.text()}\nthe logs are in {tmp_path}"
    assert len(report.faults) >= 6 and report.commands >= 20, report.text()
