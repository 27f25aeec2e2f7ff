"""The flood limit: a token bucket; a burst beyond it is queued and paced, never dropped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from roomz_bots.config import load_config
from roomz_bots.flood import TokenBucket
from roomz_bots.runner import build_bot
from roomz_bots.testing import BotHarness

from .sample_plugins import JOURNAL, burst

BURST, PER_SECOND = 2, 20.0
SLACK = 0.02  # seconds of timing noise allowed


def test_the_default_limit_is_a_burst_of_three_then_one_a_second(tmp_path: Path) -> None:
    """Without flood settings a bot may send 3 at once, then 1 a second."""
    bucket = TokenBucket()
    assert (bucket.burst, bucket.per_second) == (3, 1.0)

    path = tmp_path / "bots.toml"
    path.write_text('[[bots]]\nname = "a"\nplugins = []\n\n'
                    '[[bots]]\nname = "b"\nplugins = []\nflood_burst = 5\nflood_per_second = 2\n')
    config = load_config(path)
    a, b = (build_bot(config, bot, data_dir=tmp_path) for bot in config.bots)
    assert (a.flood.burst, a.flood.per_second) == (3, 1.0)
    assert (b.flood.burst, b.flood.per_second) == (5, 2.0)


async def test_a_token_bucket_lets_a_burst_through_then_paces() -> None:
    """burst=2, 20/s: two takes at once, then one every 50 ms, in the order asked."""
    bucket = TokenBucket(burst=BURST, per_second=PER_SECOND)
    start = time.monotonic()
    order: list[tuple[int, float]] = []

    async def take(i: int) -> None:
        await bucket.take()
        order.append((i, time.monotonic() - start))

    await asyncio.wait_for(asyncio.gather(*(take(i) for i in range(6))), 5)
    assert [i for i, _ in order] == list(range(6))
    assert order[1][1] < SLACK
    for i, at in order[BURST:]:
        assert at >= (i - BURST + 1) / PER_SECOND - SLACK, order


async def test_a_burst_beyond_the_limit_arrives_complete_in_order_and_paced() -> None:
    """``!burst 8`` with burst=2 at 20/s: all 8 arrive, in order, the last 6 about 50 ms apart."""
    async with BotHarness([burst], flood=TokenBucket(BURST, PER_SECOND)) as chat:
        await chat.say("!burst 8")
        replies = [await chat.reply() for _ in range(8)]
        await chat.no_reply()

    assert [r.text for r in replies] == [f"m{i}" for i in range(1, 9)]
    (acks,) = [e.args["acks"] for e in JOURNAL.of("burst")]
    assert [a.get("status") for a in acks] == ["ok"] * 8
    first = replies[0].timestamp
    offsets = [(r.timestamp - first).total_seconds() for r in replies]
    assert offsets[1] < 1 / PER_SECOND  # the burst goes out at once
    for i, offset in enumerate(offsets[BURST:], start=BURST):
        assert offset >= (i - BURST + 1) / PER_SECOND - SLACK, offsets
    assert offsets[-1] < 2.0, offsets  # paced by the bucket, not by the default 1/s
