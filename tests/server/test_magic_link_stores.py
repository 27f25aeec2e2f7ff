"""The two stores of magic links and their sign-ins, one contract: this process's memory, and
Redis (shared by several nodes, every step one Lua script). Each test runs on both."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import pytest

from roomz.server import redis_state
from roomz.server.magic_links import (
    MAX_WRONG_CODES,
    Confirmation,
    Confirmed,
    MagicLinks,
    MagicLinkStore,
    NewLink,
    Status,
    show_code,
)
from tests.faults.proxy import LostReplies
from tests.nodes.redis_proc import RedisProcess

ALICE = "alice@example.com"
LIFETIME = 900.0
T = TypeVar("T")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MagicLinkStore]:
    """An empty store of links that live 15 minutes."""
    if request.param == "memory":
        yield MagicLinks(LIFETIME)
        return
    async with RedisProcess() as redis:
        client = redis_state.connect(redis.url)
        try:
            yield redis_state.RedisMagicLinks(client, LIFETIME)
        finally:
            await client.aclose()


async def test_a_new_link_has_a_token_a_sign_in_id_and_a_code(store: MagicLinkStore) -> None:
    """Token and id are distinct secrets; the code is 8 letters without vowels."""
    link = await store.create(ALICE)

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", link.token)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", link.sign_in_id)
    assert link.token != link.sign_in_id
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{8}", link.code)
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", show_code(link.code))


async def test_peeking_uses_nothing_and_sees_a_waiting_client(store: MagicLinkStore) -> None:
    """Peeks show the email; after a poll they also show that a client waits; the link
    still redeems once afterwards."""
    link = await store.create(ALICE)

    first = await store.peek(link.token)
    assert (await store.poll(link.sign_in_id, 0)).status is Status.PENDING
    second = await store.peek(link.token)

    assert first is not None and (first.email, first.client_waiting) == (ALICE, False)
    assert second is not None and (second.email, second.client_waiting) == (ALICE, True)
    assert await store.redeem(link.token) == ALICE
    assert await store.peek(link.token) is None
    assert await store.redeem(link.token) is None


@pytest.mark.parametrize("by", [Status.TOKEN, Status.BROWSER])
async def test_a_redeemed_link_tells_the_poll_how_it_was_used(store: MagicLinkStore,
                                                              by: Status) -> None:
    """Redeemed with its token or by "Sign in here": the poll says which; no code works."""
    link = await store.create(ALICE)

    assert await store.redeem(link.token, by) == ALICE

    assert (await store.poll(link.sign_in_id, 0)).status is by
    assert (await store.confirm(link.token, link.code)).outcome is Confirmation.GONE
    assert await store.collect(link.sign_in_id) is False


async def test_the_right_code_approves_once_and_is_collected_once(
        store: MagicLinkStore) -> None:
    """The right code (any case, any hyphens) approves; the poll then gives the email, the
    first collect wins, and the link is used for everything else."""
    link = await store.create(ALICE)
    typed = f"{link.code[:4].lower()} - {link.code[4:]}"

    confirmed = await store.confirm(link.token, typed)

    assert (confirmed.outcome, confirmed.email) == (Confirmation.APPROVED, ALICE)
    assert (await store.poll(link.sign_in_id, 60)).email == ALICE
    assert (await store.poll(link.sign_in_id, 60)).status is Status.APPROVED
    assert [await store.collect(link.sign_in_id) for _ in range(3)] == [True, False, False]
    assert (await store.poll(link.sign_in_id, 0)).status is Status.TERMINAL
    assert await store.redeem(link.token) is None
    assert (await store.confirm(link.token, link.code)).outcome is Confirmation.GONE


async def test_wrong_codes_count_down_then_use_the_link_up(store: MagicLinkStore) -> None:
    """Four wrong codes leave 3, 2, 1, 0... tries; the fifth uses the link up for good."""
    link = await store.create(ALICE)
    wrong = "BBBBBBBB" if link.code != "BBBBBBBB" else "CCCCCCCC"

    left = [(await store.confirm(link.token, wrong)).tries_left
            for _ in range(MAX_WRONG_CODES - 1)]
    last = await store.confirm(link.token, wrong)

    assert left == [4, 3, 2, 1]
    assert last.outcome is Confirmation.TOO_MANY
    assert (await store.confirm(link.token, link.code)).outcome is Confirmation.GONE
    assert (await store.poll(link.sign_in_id, 0)).status is Status.TOO_MANY_CODES
    assert await store.redeem(link.token) is None


async def test_a_poll_too_soon_is_not_recorded(store: MagicLinkStore) -> None:
    """Within ``min_gap`` of the last recorded poll: SLOW_DOWN; with no gap asked: PENDING."""
    link = await store.create(ALICE)

    assert (await store.poll(link.sign_in_id, 60)).status is Status.PENDING
    assert (await store.poll(link.sign_in_id, 60)).status is Status.SLOW_DOWN
    assert (await store.poll(link.sign_in_id, 0)).status is Status.PENDING


async def test_an_expired_link_does_nothing(store: MagicLinkStore) -> None:
    """Past its lifetime: no peek, redeem or code; the poll says EXPIRED (not unknown)."""
    store.lifetime_seconds = -1
    link = await store.create(ALICE)

    assert await store.peek(link.token) is None
    assert await store.redeem(link.token) is None
    assert (await store.confirm(link.token, link.code)).outcome is Confirmation.GONE
    assert (await store.poll(link.sign_in_id, 0)).status is Status.EXPIRED


async def test_unknown_tokens_and_ids(store: MagicLinkStore) -> None:
    """Made-up tokens and ids find nothing."""
    assert await store.peek("A" * 43) is None
    assert await store.redeem("A" * 43) is None
    assert (await store.confirm("A" * 43, "BBBBBBBB")).outcome is Confirmation.GONE
    assert (await store.poll("A" * 43, 0)).status is Status.UNKNOWN
    assert await store.collect("A" * 43) is False


async def test_racing_uses_of_one_link_let_exactly_one_win(store: MagicLinkStore) -> None:
    """Redeems, "Sign in here" and the right code racing for one link: exactly one wins."""
    link = await store.create(ALICE)

    results = await asyncio.gather(
        *(store.redeem(link.token) for _ in range(10)),
        *(store.redeem(link.token, Status.BROWSER) for _ in range(10)),
        *(store.confirm(link.token, link.code) for _ in range(10)))

    winners: list[object] = [r for r in results if r is not None and not isinstance(r, Confirmed)]
    winners += [r for r in results if isinstance(r, Confirmed)
                and r.outcome is Confirmation.APPROVED]
    assert len(winners) == 1, results



async def test_a_step_whose_reply_was_lost_is_made_once() -> None:
    """Redis made a step of a sign-in and the link dropped before the node heard its reply;
    redis-py sends the step again. The run sent again gets the first run's reply: the
    person who clicked the link is signed in (not told it was used), a right code
    approves, a poll is pending (not "slow down"), and the approved sign-in is collected
    (not lost)."""
    async with RedisProcess() as redis:
        proxy = LostReplies(redis.port)
        async with proxy as port:
            client = redis_state.connect(f"redis://127.0.0.1:{port}/0")
            links = redis_state.RedisMagicLinks(client, LIFETIME)

            async def lost_reply(link: NewLink, step: Awaitable[T]) -> T:
                proxy.arm(links._link_key(link.token).encode())  # the step's own key
                result = await asyncio.wait_for(step, 10)
                assert proxy.dropped.is_set()
                return result

            try:
                for warm_up in (await links.create(ALICE), await links.create(ALICE)):
                    await links.poll(warm_up.sign_in_id, 0)  # each script loaded before
                    await links.confirm(warm_up.token, warm_up.code)
                    await links.collect(warm_up.sign_in_id)
                    await links.redeem(warm_up.token)

                clicked = await links.create(ALICE)
                assert await lost_reply(clicked, links.redeem(clicked.token)) == ALICE

                typed = await links.create(ALICE)
                polled = await lost_reply(typed, links.poll(typed.sign_in_id, 60))
                assert polled.status is Status.PENDING
                confirmed = await lost_reply(typed, links.confirm(typed.token, typed.code))
                assert confirmed.outcome is Confirmation.APPROVED
                assert await lost_reply(typed, links.collect(typed.sign_in_id)) is True
            finally:
                await client.aclose()
