"""``sign_in_code`` and ``wait_for_sign_in()``: a client signed in by someone confirming the
link in a browser (with a real HTTP client as the browser), and everything that ends the
wait instead."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from roomz import AsyncClient, AuthenticationError, ConnectionError, SyncClient
from roomz.server.local import LocalServer, follow_magic_link
from roomz.server.testing import ThreadedServer
from tests.browser import Browser, page_asking_for_the_code
from tests.waiting import stays_true

from .conftest import ClientFactory

ALICE = "alice@example.com"
CODE = re.compile(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")
WAIT = 15.0  # a few poll intervals, with room for a busy machine


@pytest.fixture
async def tasks() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Waits started by a test, cancelled when it ends."""
    started: list[asyncio.Task[None]] = []
    yield started
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)


async def logged_in(server: LocalServer, client: AsyncClient,
                    email: str = ALICE) -> str:
    """``client.login(email)``; returns the mailed link's URL."""
    before = len(server.links)
    assert await asyncio.wait_for(client.login(email), WAIT) is True
    return (await server.next_link(email, after=before)).url



async def test_entering_the_code_signs_the_waiting_client_in(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]], tmp_path: Path) -> None:
    """login() gives a code; the person opens the link on "another device" and types the
    code: wait_for_sign_in() returns connected, and the session is cached for next time."""
    cache = tmp_path / "session.json"
    client = make_client(server.url, session_cache_file=cache)
    url = await logged_in(server, client)
    code = client.sign_in_code
    assert code is not None and CODE.fullmatch(code)
    tasks.append(waiting := asyncio.create_task(client.wait_for_sign_in()))

    async with Browser() as browser:
        page = await page_asking_for_the_code(browser, url)
        done = await browser.submit(page, "Sign the terminal in", code=code)
        assert "Your terminal is signed in" in done.text
        assert await browser.me(server.url) is None
    await asyncio.wait_for(waiting, WAIT)

    assert client.connected
    assert client.user is not None and client.user["email"] == ALICE
    assert client.sign_in_code is None
    later = make_client(server.url, session_cache_file=cache)
    await asyncio.wait_for(later.connect(), WAIT)
    assert later.connected


async def test_only_the_right_code_signs_the_client_in(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]]) -> None:
    """A wrong code leaves the client waiting (across a poll); the right one then ends it."""
    client = make_client(server.url)
    url = await logged_in(server, client)
    code = client.sign_in_code
    assert code is not None
    wrong = "BBBB-BBBB" if code != "BBBB-BBBB" else "CCCC-CCCC"
    tasks.append(waiting := asyncio.create_task(client.wait_for_sign_in()))

    async with Browser() as browser:
        page = await page_asking_for_the_code(browser, url)
        page = await browser.submit(page, "Sign the terminal in", code=wrong)
        assert "You have 4 tries left." in page.text
        assert await stays_true(lambda: not waiting.done() and not client.connected, 2.5)
        await browser.submit(page, "Sign the terminal in", code=code)
    await asyncio.wait_for(waiting, WAIT)

    assert client.connected


async def test_someone_elses_link_does_not_sign_the_requester_in(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]], tmp_path: Path) -> None:
    """Mallory's client asks for a link for Alice and waits. Alice opens the link and presses
    "Sign in here": her browser is signed in; Mallory's wait fails saying the link signed in
    a browser, and Mallory has no session, in memory or in the cache."""
    cache = tmp_path / "mallory.json"
    mallory = make_client(server.url, session_cache_file=cache)
    url = await logged_in(server, mallory, ALICE)
    tasks.append(waiting := asyncio.create_task(mallory.wait_for_sign_in()))

    async with Browser() as alice:
        page = await page_asking_for_the_code(alice, url)
        await alice.submit(page, "Sign in here")
        assert await alice.me(server.url) == ALICE
    with pytest.raises(AuthenticationError) as failed:
        await asyncio.wait_for(waiting, WAIT)

    assert failed.value.detail == ("The sign-in link was used to sign in a browser instead. "
                                   "Request a new link to sign in here.")
    assert failed.value.status == 410
    assert not mallory.connected and mallory.user is None
    assert mallory.sign_in_code is None
    assert not cache.exists()
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(mallory.connect(), WAIT)


async def test_five_wrong_codes_end_the_wait(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]]) -> None:
    """Five wrong codes use the link up; the wait fails saying so."""
    client = make_client(server.url)
    url = await logged_in(server, client)
    code = client.sign_in_code
    wrong = "BBBB-BBBB" if code != "BBBB-BBBB" else "CCCC-CCCC"
    tasks.append(waiting := asyncio.create_task(client.wait_for_sign_in()))

    async with Browser() as browser:
        page = await page_asking_for_the_code(browser, url)
        for _ in range(5):
            page = await browser.submit(page, "Sign the terminal in", code=wrong)
    with pytest.raises(AuthenticationError) as failed:
        await asyncio.wait_for(waiting, WAIT)

    assert failed.value.detail is not None
    assert failed.value.detail.startswith("Too many wrong codes were entered")
    assert not client.connected


async def test_an_expired_link_ends_the_wait(make_client: ClientFactory) -> None:
    """A link that expired: the wait fails saying so."""
    async with LocalServer() as server:
        server.server.magic_links.lifetime_seconds = -1
        client = make_client(server.url)
        await logged_in(server, client)

        with pytest.raises(AuthenticationError) as failed:
            await asyncio.wait_for(client.wait_for_sign_in(), WAIT)

    assert "expired" in str(failed.value)
    assert client.sign_in_code is None


async def test_pasting_the_token_while_waiting_ends_the_wait(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]]) -> None:
    """connect() with the mailed token while the wait runs: the wait returns once that
    connect has connected, without an error."""
    client = make_client(server.url)
    url = await logged_in(server, client)
    token = server.links[-1].token
    tasks.append(waiting := asyncio.create_task(client.wait_for_sign_in()))
    async with Browser() as browser:  # a scanner's look, once the client is polling
        await page_asking_for_the_code(browser, url)

    tasks.append(connecting := asyncio.create_task(client.connect(token)))
    await asyncio.wait_for(waiting, WAIT)

    assert client.connected and client.sign_in_code is None
    await asyncio.wait_for(connecting, WAIT)


async def test_the_token_used_by_someone_else_ends_the_wait(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]]) -> None:
    """Another program redeems the token (a plain GET): the wait fails saying the token was
    used elsewhere."""
    client = make_client(server.url)
    url = await logged_in(server, client)
    tasks.append(waiting := asyncio.create_task(client.wait_for_sign_in()))

    await follow_magic_link(url)
    with pytest.raises(AuthenticationError) as failed:
        await asyncio.wait_for(waiting, WAIT)

    assert failed.value.detail is not None
    assert failed.value.detail.startswith("The token from the sign-in mail was used")
    assert not client.connected


async def test_nothing_to_wait_for_is_a_connection_error(
        server: LocalServer, make_client: ClientFactory) -> None:
    """Without a login() there is no code and nothing to wait for."""
    client = make_client(server.url)

    assert client.sign_in_code is None
    with pytest.raises(ConnectionError, match=r"call login\(email\) first"):
        await asyncio.wait_for(client.wait_for_sign_in(), WAIT)


async def test_cancelling_stops_the_wait_and_the_sign_in_stays(
        server: LocalServer, make_client: ClientFactory,
        tasks: list[asyncio.Task[None]]) -> None:
    """A cancelled wait leaves the code and the link as they were: a new wait still works."""
    client = make_client(server.url)
    url = await logged_in(server, client)
    code = client.sign_in_code
    first = asyncio.create_task(client.wait_for_sign_in())
    async with Browser() as browser:
        await page_asking_for_the_code(browser, url)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(first, WAIT)
    assert client.sign_in_code == code

    tasks.append(second := asyncio.create_task(client.wait_for_sign_in()))
    async with Browser() as browser:
        page = await page_asking_for_the_code(browser, url)
        await browser.submit(page, "Sign the terminal in", code=code)
    await asyncio.wait_for(second, WAIT)

    assert client.connected


async def test_a_server_that_went_away_ends_the_wait_with_connection_error(
        make_client: ClientFactory) -> None:
    """The server stops answering for longer than connection_timeout: ConnectionError, and
    the code stays (the link may still work once the server is back)."""
    async with LocalServer() as server:
        client = make_client(server.url, connection_timeout=1.0)
        await logged_in(server, client)
    code = client.sign_in_code

    with pytest.raises(ConnectionError, match="cannot reach"):
        await asyncio.wait_for(client.wait_for_sign_in(), WAIT)

    assert client.sign_in_code == code


def test_sync_client_waits_for_the_sign_in_too() -> None:
    """SyncClient.sign_in_code and wait_for_sign_in() block the same way."""
    with ThreadedServer() as server:
        client = SyncClient(server.url)
        try:
            assert client.login(ALICE) is True
            code = client.sign_in_code
            assert code is not None and CODE.fullmatch(code)
            url = server.links()[-1].url

            async def confirm() -> None:
                async with Browser() as browser:
                    page = await page_asking_for_the_code(browser, url)
                    await browser.submit(page, "Sign the terminal in", code=code)

            with ThreadPoolExecutor(1) as browser_thread:  # the person, while this one waits
                confirming = browser_thread.submit(asyncio.run, confirm())
                client.wait_for_sign_in()
                confirming.result(WAIT)
            assert client.connected
        finally:
            client.close()
