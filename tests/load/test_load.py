"""The short load run, in every CI run: nothing lost, duplicated, refused or dropped."""

from __future__ import annotations

import pytest

from .loadrun import load_on


@pytest.mark.timeout(180)
@pytest.mark.parametrize("nodes", [1, 2], ids=["one-node", "two-nodes-on-redis"])
async def test_short_load_delivers_every_acked_message_once(nodes: int) -> None:
    """20 users x 10 connections sending for 5 s: every acked message reaches all 10 once."""
    result = await load_on(nodes, users=20, per_user=10, seconds=5)
    print(result.report())
    assert result.ok, result.report()
