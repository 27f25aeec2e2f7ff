"""A stranger tries to lock someone out of sign-in: asks for their links until refused, sprays
many emails from one address, or posts a form from another website."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from roomz.server.local import LocalServer
from tests.nodes.redis_proc import RedisProcess
from tests.server.helpers import assert_problem

TIMEOUT = aiohttp.ClientTimeout(total=10)
VICTIM = "victim@example.com"
ATTACKER = "127.0.0.2"  # loopback, but another address than the victim's 127.0.0.1
PAIR_LIMIT = "this email may get 5 links an hour from one address"

Answer = tuple[int, dict[str, Any], str | None]  # status, JSON body, Retry-After
Servers = Callable[..., Any]


async def ask(url: str, email: str, *, local: str = "127.0.0.1",
              headers: dict[str, str] | None = None) -> Answer:
    """Request a link for ``email`` from the local address ``local``."""
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    async with aiohttp.ClientSession(timeout=TIMEOUT, connector=connector) as http, http.post(
        f"{url}/auth/request-magic-link", json={"email": email}, headers=headers or {}
    ) as resp:
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def ask_until_refused(url: str, email: str, *, local: str = ATTACKER,
                            headers: dict[str, str] | None = None, most: int = 30) -> int:
    """Ask until the answer is 429; returns how many were answered 200 before."""
    for granted in range(most):
        status, body, _ = await ask(url, email, local=local, headers=headers)
        if status == 429:
            return granted
        assert status == 200, body
    raise AssertionError(f"never refused after {most} requests")


def assert_refused(answer: Answer, limit: str) -> None:
    """429 problem JSON naming ``limit``, with a Retry-After within the hour."""
    status, body, retry_after = answer
    assert status == 429, body
    assert_problem(body, 429)
    assert limit in body["detail"], body["detail"]
    assert retry_after is not None and 0 < int(retry_after) <= 3600


@pytest.fixture(params=["in-memory", "redis"])
def servers(request: pytest.FixtureRequest) -> Servers:
    """Makes servers that keep their rate limits in memory, or in a real Redis."""
    @asynccontextmanager
    async def make(**settings: Any) -> AsyncIterator[LocalServer]:
        if request.param == "in-memory":
            async with LocalServer(**settings) as server:
                yield server
            return
        async with RedisProcess() as redis, LocalServer(redis_url=redis.url,
                                                        **settings) as server:
            yield server
    return make


async def test_a_strangers_requests_do_not_lock_the_victim_out(servers: Servers) -> None:
    """Another address asking for the victim's links is refused after 5; the victim still
    gets a link from their own address."""
    async with servers() as server:
        assert await ask_until_refused(server.url, VICTIM) == 5
        assert_refused(await ask(server.url, VICTIM, local=ATTACKER), PAIR_LIMIT)

        status, body, _ = await ask(server.url, VICTIM, local="127.0.0.1")

        assert status == 200, body
        assert (await server.next_link(VICTIM, after=5)).email == VICTIM


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(servers: Servers) -> None:
    """Behind a trusted proxy each client is counted by its X-Forwarded-For address."""
    async with servers(trusted_proxies=("127.0.0.0/8",)) as server:
        stranger = {"X-Forwarded-For": "203.0.113.7"}
        # What the stranger writes in X-Forwarded-For is left of what the proxy appends.
        spoofing = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert await ask_until_refused(server.url, VICTIM, headers=stranger) == 5
        assert_refused(await ask(server.url, VICTIM, headers=spoofing), PAIR_LIMIT)

        status, body, _ = await ask(server.url, VICTIM, headers={"X-Forwarded-For": "198.51.100.1"})

        assert status == 200, body


async def test_an_untrusted_peers_forwarded_for_is_ignored(servers: Servers) -> None:
    """Without trusted proxies, a made-up X-Forwarded-For on each request changes nothing."""
    async with servers() as server:
        for n in range(5):
            status, body, _ = await ask(server.url, VICTIM, local=ATTACKER,
                                        headers={"X-Forwarded-For": f"203.0.113.{n}"})
            assert status == 200, body

        answer = await ask(server.url, VICTIM, local=ATTACKER,
                           headers={"X-Forwarded-For": "203.0.113.99"})

        assert_refused(answer, PAIR_LIMIT)


async def test_one_address_cannot_spray_many_emails(servers: Servers) -> None:
    """One address may ask for 20 links an hour in all, for any emails; others still may."""
    async with servers() as server:
        for n in range(20):
            status, body, _ = await ask(server.url, f"person{n}@example.com", local=ATTACKER)
            assert status == 200, body

        answer = await ask(server.url, "person20@example.com", local=ATTACKER)

        assert_refused(answer, "one address may ask for 20 links an hour")
        assert (await ask(server.url, "person20@example.com", local="127.0.0.1"))[0] == 200


async def test_one_ipv6_network_counts_as_one_address(servers: Servers) -> None:
    """Behind a trusted proxy, a stranger spraying emails from every address of an IPv6 /64
    is refused after 20, as one address is; another /64 still may ask."""
    async with servers(trusted_proxies=("127.0.0.0/8",)) as server:
        for n in range(20):
            status, body, _ = await ask(server.url, f"person{n}@example.com",
                                        headers={"X-Forwarded-For": f"2001:db8:0:1::{n + 1:x}"})
            assert status == 200, body

        answer = await ask(server.url, "person20@example.com",
                           headers={"X-Forwarded-For": "2001:db8:0:1:ffff::21"})

        assert_refused(answer, "one address may ask for 20 links an hour")
        elsewhere = {"X-Forwarded-For": "2001:db8:0:2::1"}
        assert (await ask(server.url, "person20@example.com", headers=elsewhere))[0] == 200


async def test_one_email_gets_a_bounded_number_of_links_from_all_addresses(
        servers: Servers) -> None:
    """Beyond the per-address limit, an email gets at most ``magic_link_email_limit`` links
    an hour from all addresses together."""
    async with servers(magic_link_email_limit=7) as server:
        assert await ask_until_refused(server.url, VICTIM, local="127.0.0.2") == 5
        for _ in range(2):
            assert (await ask(server.url, VICTIM, local="127.0.0.3"))[0] == 200

        answer = await ask(server.url, VICTIM, local="127.0.0.4")

        assert_refused(answer, "this email may get 7 links an hour in all")


async def test_refused_requests_use_up_no_other_limit(servers: Servers) -> None:
    """A stranger refused 50 times has spent only the 5 granted requests of the victim's
    email and of their own address."""
    async with servers(magic_link_email_limit=8, magic_link_address_limit=7) as server:
        assert await ask_until_refused(server.url, VICTIM) == 5
        for _ in range(50):
            assert (await ask(server.url, VICTIM, local=ATTACKER))[0] == 429

        # The victim's email had 5 of its 8 used: 3 remain for the victim.
        for _ in range(3):
            assert (await ask(server.url, VICTIM, local="127.0.0.1"))[0] == 200
        assert_refused(await ask(server.url, VICTIM, local="127.0.0.1"),
                       "this email may get 8 links an hour in all")
        # The stranger's address had 5 of its 7 used: 2 remain.
        for n in range(2):
            assert (await ask(server.url, f"other{n}@example.com", local=ATTACKER))[0] == 200
        assert_refused(await ask(server.url, "other2@example.com", local=ATTACKER),
                       "one address may ask for 7 links an hour")


# Cross-site requests

@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None,
], ids=["text", "text-charset", "form", "multipart", "none"])
async def test_a_request_that_is_not_json_is_refused_415(server: LocalServer,
                                                         content_type: str | None) -> None:
    """A cross-site form can POST ``{"email": ...}`` as text/plain: it is refused with 415
    problem JSON naming the expected type, and no link is mailed."""
    headers = {"Content-Type": content_type} if content_type else {}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.post(
        f"{server.url}/auth/request-magic-link", data=b'{"email": "victim@example.com"}',
        headers=headers, skip_auto_headers=["Content-Type"]
    ) as resp:
        status, body = resp.status, await resp.json()

    assert status == 415, body
    assert_problem(body, 415)
    assert "application/json" in body["detail"]
    assert server.links == []


async def test_json_with_a_charset_is_accepted(server: LocalServer) -> None:
    """``application/json; charset=utf-8`` is JSON."""
    status, body, _ = await ask(server.url, VICTIM,
                                headers={"Content-Type": "application/json; charset=utf-8"})

    assert status == 200, body
