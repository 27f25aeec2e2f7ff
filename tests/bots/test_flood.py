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

from .helpers import assert_no_reply, wait_until
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
        await assert_no_reply(chat)

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


async def tick(bucket: TokenBucket, pace: FakeClock, seconds: int) -> None:
    """Move ``pace`` a second at a time, each second's token taken before the next."""
    for _ in range(seconds):
        before = bucket.waiting
        pace.advance(1)
        await wait_until(lambda: bucket.waiting < before,  # noqa: B023 - awaited at once
                         what="a token taken")


async def test_an_overflow_ends_once_the_line_of_replies_is_down_to_half() -> None:
    """max_waiting=4: the fifth reply starts an overflow (``first``), later ones are dropped
    too while more than 2 wait; at 2 the overflow ends, ``calm()`` gives the count, and
    replies wait again. A cancelled waiter leaves the line."""
    pace = FakeClock()
    bucket = TokenBucket(burst=1, per_second=1.0, max_waiting=4, clock=pace)
    await bucket.take_reply()
    waiting = [asyncio.create_task(bucket.take_reply()) for _ in range(4)]
    await wait_until(lambda: bucket.waiting == 4, what="four waiting")
    with pytest.raises(ReplyDropped) as dropped:
        await bucket.take_reply()
    assert dropped.value.first and bucket.overflowing
    with pytest.raises(ReplyDropped) as again:
        await bucket.take_reply()
    assert not again.value.first

    pace.advance(1)
    await asyncio.wait_for(waiting[0], 5)
    with pytest.raises(ReplyDropped):  # three still wait: the overflow goes on
        await bucket.take_reply()
    waiting[1].cancel()  # two left: that is half
    assert await asyncio.wait_for(bucket.calm(), 5) == 3
    assert not bucket.overflowing and bucket.waiting == 2

    late = asyncio.create_task(bucket.take_reply())  # accepted again, and served in turn
    await wait_until(lambda: bucket.waiting == 3, what="the new reply waiting")
    await tick(bucket, pace, 3)
    await asyncio.wait_for(asyncio.gather(waiting[2], waiting[3], late), 5)


async def test_the_later_parts_of_a_reply_are_never_dropped() -> None:
    """During an overflow a reply's later part (``continuing``) still takes its turn, at
    the back of the line, even beyond ``max_waiting``."""
    pace = FakeClock()
    bucket = TokenBucket(burst=1, per_second=1.0, max_waiting=2, clock=pace)
    await bucket.take_reply()
    waiting = [asyncio.create_task(bucket.take_reply()) for _ in range(2)]
    await wait_until(lambda: bucket.waiting == 2, what="two waiting")
    with pytest.raises(ReplyDropped):
        await bucket.take_reply()
    rest = asyncio.create_task(bucket.take_reply(continuing=True))
    await wait_until(lambda: bucket.waiting == 3, what="the later part waiting too")
    await tick(bucket, pace, 3)
    await asyncio.wait_for(asyncio.gather(*waiting, rest), 5)


async def test_posts_as_fast_as_the_limit_cannot_starve_the_replies() -> None:
    """A post always waiting (a plugin posting at the limit's rate): replies still go, one
    after every two posts, so an overflow ends."""
    pace = FakeClock()
    bucket = TokenBucket(burst=1, per_second=1.0, max_waiting=2, clock=pace)
    await bucket.take()
    order: list[str] = []

    async def poster() -> None:
        for i in range(1, 100):
            await bucket.take()
            order.append(f"p{i}")

    async def reply(name: str) -> None:
        await bucket.take_reply()
        order.append(name)

    posting = asyncio.create_task(poster())
    replies = [asyncio.create_task(reply(name)) for name in ("r1", "r2")]
    await wait_until(lambda: bucket.waiting == 3, what="a post and two replies waiting")
    with pytest.raises(ReplyDropped):
        await bucket.take_reply()
    for served in range(1, 7):
        pace.advance(1)
        await wait_until(lambda: len(order) == served,  # noqa: B023 - awaited at once
                         what=f"{served} served")
    posting.cancel()
    await asyncio.gather(posting, *replies, return_exceptions=True)
    assert order == ["p1", "p2", "r1", "p3", "p4", "r2"]
    assert not bucket.overflowing


@pytest.mark.parametrize("limits", [(0, 1.0, 20), (3, 0.0, 20), (3, float("inf"), 20),
                                    (3, float("nan"), 20), (3, 1.0, 0)])
def test_a_flood_limit_that_could_not_pace_is_refused(limits: tuple[int, float, int]) -> None:
    """No burst, no or an endless rate, or no room for a reply: ValueError naming them."""
    with pytest.raises(ValueError, match="burst=.*per_second=.*max_waiting="):
        TokenBucket(*limits)
