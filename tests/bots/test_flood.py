"""The flood limit: a token bucket; a burst beyond it is queued and paced, in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from roomz_bots.clock import FakeClock
from roomz_bots.config import load_config
from roomz_bots.flood import ReplyDropped, TokenBucket
from roomz_bots.runner import build_bot
from roomz_bots.testing import BotHarness

from .helpers import wait_until
from .sample_plugins import JOURNAL, burst

BURST, PER_SECOND = 2, 20.0
SLACK = 0.02  # seconds of timing noise allowed


def test_the_default_limit_is_a_burst_of_three_then_one_a_second(tmp_path: Path) -> None:
    """Without flood settings a bot may send 3 at once, then 1 a second; 20 replies wait."""
    bucket = TokenBucket()
    assert (bucket.burst, bucket.per_second, bucket.max_waiting) == (3, 1.0, 20)

    path = tmp_path / "bots.toml"
    path.write_text('[[bots]]\nname = "a"\nplugins = []\n\n'
                    '[[bots]]\nname = "b"\nplugins = []\nflood_burst = 5\nflood_per_second = 2\n'
                    'flood_queue = 7\n')
    config = load_config(path)
    a, b = (build_bot(config, bot, data_dir=tmp_path) for bot in config.bots)
    assert (a.flood.burst, a.flood.per_second, a.flood.max_waiting) == (3, 1.0, 20)
    assert (b.flood.burst, b.flood.per_second, b.flood.max_waiting) == (5, 2.0, 7)


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


async def test_posts_go_ahead_of_waiting_replies_each_line_in_order() -> None:
    """With replies r1, r2 and then posts p1, p2 waiting, tokens go to p1, p2, r1, r2."""
    pace = FakeClock()
    bucket = TokenBucket(burst=1, per_second=1.0, max_waiting=5, clock=pace)
    await bucket.take()  # the burst is used up: everything after waits
    order: list[str] = []

    async def take(name: str) -> None:
        await (bucket.take() if name.startswith("p") else bucket.take_reply())
        order.append(name)

    tasks = [asyncio.create_task(take(name)) for name in ("r1", "r2", "p1", "p2")]
    await wait_until(lambda: bucket.waiting == 4, what="four waiting")
    for served in range(1, 5):
        pace.advance(1)
        await wait_until(lambda: len(order) == served,  # noqa: B023 - awaited at once
                         what=f"{served} served")
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["p1", "p2", "r1", "r2"]


async def test_an_overflow_lasts_until_the_line_of_replies_has_drained() -> None:
    """max_waiting=2: the third reply is dropped with the overflow, the fourth without it;
    a reply while one still waits is dropped too; once the line is empty, the overflow
    resolves to the count and replies wait again. A cancelled waiter leaves the line."""
    pace = FakeClock()
    bucket = TokenBucket(burst=1, per_second=1.0, max_waiting=2, clock=pace)
    await bucket.take_reply()
    first, second = (asyncio.create_task(bucket.take_reply()) for _ in range(2))
    await wait_until(lambda: bucket.waiting == 2, what="two waiting")
    with pytest.raises(ReplyDropped) as dropped:
        await bucket.take_reply()
    overflow = dropped.value.overflow
    assert overflow is not None and not overflow.done()
    with pytest.raises(ReplyDropped) as again:
        await bucket.take_reply()
    assert again.value.overflow is None

    pace.advance(1)
    await asyncio.wait_for(first, 5)
    with pytest.raises(ReplyDropped):  # one still waits: the overflow goes on
        await bucket.take_reply()
    second.cancel()
    assert await asyncio.wait_for(overflow, 5) == 3
    assert bucket.waiting == 0

    pace.advance(1)
    await asyncio.wait_for(bucket.take_reply(), 5)  # accepted again, and served


@pytest.mark.parametrize("limits", [(0, 1.0, 20), (3, 0.0, 20), (3, float("inf"), 20),
                                    (3, float("nan"), 20), (3, 1.0, 0)])
def test_a_flood_limit_that_could_not_pace_is_refused(limits: tuple[int, float, int]) -> None:
    """No burst, no or an endless rate, or no room for a reply: ValueError naming them."""
    with pytest.raises(ValueError, match="burst=.*per_second=.*max_waiting="):
        TokenBucket(*limits)
