"""Events reach handlers in the order they came, one event's handlers after another's, even
when handling one awaits (an async handler, the display name re-applied on a reconnect)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from roomz import AsyncClient, ConnectionState
from roomz.questions import Answer, Question
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from tests.events import Events
from tests.faults.proxy import TcpProxy

from .conftest import ClientFactory, SignedIn
from .helpers import TIMEOUT, wait_until

FAST = {"reconnect_delay": 0.1, "max_reconnect_attempts": 50, "connection_timeout": 2.0}
ALICE = "alice@example.com"
MISSED = ("missed 0", "missed 1", "missed 2")


class AwayAndBack:
    """``away``, a client of Alice's behind a proxy, and ``sender``, another of hers."""

    def __init__(self, proxy: TcpProxy, sender: AsyncClient, away: AsyncClient) -> None:
        self.proxy, self.sender, self.away = proxy, sender, away

    async def miss_and_come_back(self) -> None:
        """Cut ``away``'s link, send :data:`MISSED` meanwhile, and let it reconnect."""
        self.proxy.blackhole()  # attempts hang until the link is back
        self.proxy.cut()
        await wait_until(lambda: self.away.connection_state is ConnectionState.RECONNECTING)
        for text in MISSED:
            ack = await asyncio.wait_for(self.sender.send(text), TIMEOUT)
            assert ack["status"] == "ok", ack
        self.proxy.restore()


@asynccontextmanager
async def away_and_back(server: LocalServer, signed_in: SignedIn) -> AsyncIterator[AwayAndBack]:
    """An :class:`AwayAndBack` on ``server`` for the block."""
    proxy = TcpProxy([server.port])
    await proxy.start()
    try:
        sender = await signed_in(server, ALICE)
        away = await signed_in(server, ALICE, url=proxy.url, **FAST)
        yield AwayAndBack(proxy, sender, away)
    finally:
        await proxy.close()


def contents(events: Events) -> list[tuple[str, Any]]:
    """``(event, content)`` of what ``events`` recorded; content None for other events."""
    return [(name, data.get("content")) for name, data in events.events]


async def test_authenticated_comes_before_the_replay_when_a_name_is_reapplied(
        server: LocalServer, signed_in: SignedIn) -> None:
    """The client re-applies the display name before ``authenticated`` reaches handlers;
    the replay that came meanwhile waits for them, as a live message would."""
    async with away_and_back(server, signed_in) as setup:
        await asyncio.wait_for(setup.away.set_display_name("Away"), TIMEOUT)
        events = Events(setup.away)
        await setup.miss_and_come_back()
        await wait_until(lambda: len(events.named("message")) == len(MISSED), 10,
                         "the replay")
    assert contents(events) == [("disconnect", None), ("authenticated", None),
                                *(("message", text) for text in MISSED)]
    # The data is the new connection's greeting (no name yet); client.user has the name.
    assert events.named("authenticated")[0]["user"]["display_name"] is None
    assert setup.away.user is not None and setup.away.user["display_name"] == "Away"


async def test_a_handler_that_awaits_is_not_overtaken(server: LocalServer,
                                                      signed_in: SignedIn) -> None:
    """An async handler that replies to a missed message awaits the acknowledgement; the
    echo of its reply, arriving meanwhile, reaches handlers after the rest of the replay."""
    async with away_and_back(server, signed_in) as setup:
        events = Events(setup.away)  # registered first: records each event as it is handed on

        async def reply_to_the_first(data: dict[str, Any]) -> None:
            if data.get("replayed") and data["content"] == MISSED[0]:
                ack = await setup.away.send("reply")
                assert ack["status"] == "ok", ack

        setup.away.on("message", reply_to_the_first)
        await setup.miss_and_come_back()
        await wait_until(lambda: len(events.named("message")) == len(MISSED) + 1, 10,
                         "the replay and the reply")
    assert [text for name, text in contents(events) if name == "message"] == [*MISSED, "reply"]


async def test_a_handler_that_asks_gets_its_answer(server: LocalServer,
                                                   signed_in: SignedIn) -> None:
    """A handler waiting in ``ask()`` holds the events after it, but not the answer it
    waits for."""
    asker = await signed_in(server, ALICE)
    answerer = await signed_in(server, ALICE)
    if not asker.supports("questions"):
        raise AssertionError("the test server offers questions")
    got: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    async def ask_on_deploy(data: dict[str, Any]) -> None:
        if data["content"] == "deploy":
            got.set_result(await asker.ask("Sure?", ["yes", "no"], timeout=TIMEOUT))

    async def say_yes(data: dict[str, Any]) -> None:
        if Question.of(data) is not None:
            await answerer.answer(data, "yes")

    asker.on("message", ask_on_deploy)
    answerer.on("message", say_yes)
    await asyncio.wait_for(answerer.send("deploy"), TIMEOUT)
    answer = await asyncio.wait_for(got, TIMEOUT)
    assert (answer.choice, answer.timed_out) == ("yes", False)


async def test_a_session_ended_says_error_then_disconnect_to_async_handlers(
        server: LocalServer, make_client: ClientFactory, tmp_path: Path) -> None:
    """The session logged out elsewhere: handlers get ``error``, then ``disconnect``, even
    when the ``error`` handler awaits meanwhile."""
    session = await server.sign_in(ALICE)
    cache = tmp_path / "session.json"
    SessionCache(cache).save(server.url, session)
    client = make_client(server.url, session_cache_file=cache)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    said: list[str] = []
    disconnected = asyncio.Event()

    async def on_error(data: dict[str, Any]) -> None:
        said.append("error")
        with contextlib.suppress(asyncio.TimeoutError):  # a disconnect would end it early
            await asyncio.wait_for(disconnected.wait(), 1.0)
        said.append("error handled")

    def on_disconnect(data: dict[str, Any]) -> None:
        said.append("disconnect")
        disconnected.set()

    client.on("error", on_error)
    client.on("disconnect", on_disconnect)
    async with aiohttp.ClientSession() as http, http.post(
            f"{server.url}/auth/logout", headers={"Cookie": f"session_token={session}"}) as resp:
        assert resp.status == 200
    await wait_until(lambda: "disconnect" in said, what="the disconnect")
    assert said == ["error", "error handled", "disconnect"]
    assert client.connection_state is ConnectionState.DISCONNECTED
