"""Signing a waiting client in by confirming the link, across ``roomz-server`` nodes on one
real Redis: the client polls one node while the browser uses another, and a node restarts
while the client waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from roomz import AsyncClient
from tests.browser import SCANNERS, Browser, page_asking_for_the_code, scan
from tests.server.proc import ServerProcess

from .conftest import SECRET
from .redis_proc import RedisProcess

ALICE = "alice@example.com"
WAIT = 20.0



async def test_the_browser_on_one_node_signs_in_the_client_polling_another(
        node: Callable[..., ServerProcess]) -> None:
    """The client asks node two for a link and polls node two. A scanner looks at the link
    on node one, a wrong code is typed on node two's page, and the right one on node one's:
    the client is signed in, through node two."""
    async with node() as one, node() as two:
        client = AsyncClient(two.url, connection_timeout=10)
        before = len(two.lines)
        assert await asyncio.wait_for(client.login(ALICE), WAIT) is True
        link = await two.next_link(ALICE, after=before)
        code = client.sign_in_code
        assert code is not None
        waiting = asyncio.create_task(client.wait_for_sign_in())
        try:
            on_one = link.url.replace(two.url, one.url)
            assert await scan(on_one, SCANNERS[0]) == (200, "text/html")
            async with Browser() as browser:
                page = await page_asking_for_the_code(browser, link.url)
                page = await browser.submit(page, "Sign the terminal in", code="BBBB-CCCC")
                assert "You have 4 tries left." in page.text
                page = await page_asking_for_the_code(browser, on_one)
                done = await browser.submit(page, "Sign the terminal in", code=code)
                assert "Your terminal is signed in" in done.text
            await asyncio.wait_for(waiting, WAIT)
            assert client.connected
            assert client.user is not None and client.user["email"] == ALICE
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            await client.disconnect()


async def test_the_wait_rides_out_a_restart_of_its_node(
        node: Callable[..., ServerProcess], redis: RedisProcess, tmp_path: Path) -> None:
    """The node the client polls is killed and started again on its port: the wait goes on
    (the sign-in lives in Redis), and the code confirmed on the other node signs it in."""
    async with node() as one, node() as two:
        client = AsyncClient(one.url, connection_timeout=WAIT)
        before = len(one.lines)
        assert await asyncio.wait_for(client.login(ALICE), WAIT) is True
        link = await one.next_link(ALICE, after=before)
        code = client.sign_in_code
        assert code is not None
        waiting = asyncio.create_task(client.wait_for_sign_in())
        try:
            async with Browser() as browser:
                await page_asking_for_the_code(browser, link.url)
                await one.kill()
                await asyncio.sleep(2.5)  # the outage outlasts a poll interval: a poll fails
                again = ServerProcess("--redis-url", redis.url, state_home=tmp_path,
                                      env={"JWT_SECRET_KEY": SECRET}, port=one.port)
                async with again:
                    page = await page_asking_for_the_code(
                        browser, link.url.replace(one.url, two.url))
                    await browser.submit(page, "Sign the terminal in", code=code)
                    await asyncio.wait_for(waiting, WAIT)
                    assert client.connected
                    await client.disconnect()
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            await client.disconnect()
