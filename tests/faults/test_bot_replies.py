"""A bot's reply that the server cannot take just now (Redis away), or whose link drops
as it is in flight, is not lost, and is said once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from roomz_bots import Bot, load_plugin
from tests.bots.sample_plugins import JOURNAL, gated
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess

from .helpers import FAST, TIMEOUT, Watch, wait_until
from .proxy import TcpProxy


class AnswersKept(AsyncClient):
    """A client that keeps every acknowledgement its sends got."""

    acks: list[dict[str, Any]]
    tries = 0  # sends begun

    async def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Send, as ever; the acknowledgement is kept in :attr:`acks` too."""
        self.tries += 1
        ack = await super().send(*args, **kwargs)
        self.acks.append(ack)
        return ack


@contextlib.asynccontextmanager
async def gatekeeper_waiting(server_url: str, bot_url: str, session: str,
                             make_client: Callable[..., AsyncClient], tmp_path: Path,
                             **options: Any) -> AsyncIterator[tuple[AnswersKept, Watch]]:
    """A person on ``server_url`` who sent ``!gated``, and the bot ``gatekeeper`` (on
    ``bot_url``, with client ``options``) running it, its reply held until ``gated.OPEN``
    is set: the bot's client and what the person heard. The bot is stopped at the end."""
    person = make_client(server_url, session)
    watch = Watch("person", person)
    SessionCache(tmp_path / "bot.json").save(bot_url, session)
    client = AnswersKept(bot_url, session_cache_file=tmp_path / "bot.json", **options)
    client.acks = []
    bot = Bot("gatekeeper", client, [load_plugin(gated)], data_dir=tmp_path / "bots")
    await asyncio.wait_for(person.connect(), TIMEOUT)
    await asyncio.wait_for(bot.start(), TIMEOUT)
    try:
        assert (await asyncio.wait_for(person.send("!gated"), TIMEOUT))["status"] == "ok"
        await wait_until(lambda: bool(JOURNAL.of("gated", "waiting")), what="the command")
        yield client, watch
    finally:
        await asyncio.wait_for(bot.stop(), TIMEOUT * 2)


@pytest.mark.timeout(60)
async def test_a_reply_refused_while_redis_is_down_goes_out_once_it_is_back(
        node: Callable[..., ServerProcess], redis: RedisProcess,
        make_client: Callable[..., AsyncClient], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The soak found it (seed 12, two nodes): a command acknowledged just before Redis
    went away was never answered. The bot's reply got 503 "cannot keep it in its history
    just now; try again shortly", nothing was delivered, and the bot dropped the reply
    with a warning. Now it tries again, as it says, until the reply is kept."""
    monkeypatch.setattr(gated, "OPEN", asyncio.Event())
    JOURNAL.clear()
    async with node() as one:
        session = await one.sign_in("gina@example.com")
        async with gatekeeper_waiting(one.url, one.url, session, make_client, tmp_path,
                                      reconnect_delay=FAST["reconnect_delay"]) as (client,
                                                                                    watch):
            redis.kill()
            gated.OPEN.set()  # the reply meets a server that cannot keep it
            await wait_until(lambda: any(a.get("code") == 503 for a in client.acks),
                             what="the reply refused")
            await redis.start()

            await wait_until(lambda: bool(JOURNAL.of("gated", "replied")), 20, "the reply")
            assert JOURNAL.of("gated", "replied")[0].args["ack"]["status"] == "ok"
            await watch.events.wait_for("message",
                                        lambda m: m["content"] == "through the gate",
                                        timeout=TIMEOUT)
            assert [m["content"] for m in watch.messages].count("through the gate") == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lost", ["the acknowledgement", "the reply itself"])
async def test_a_reply_whose_link_drops_in_flight_is_said_once_after_the_reconnect(
        server: LocalServer, make_client: Callable[..., AsyncClient], tmp_path: Path,
        proxy_factory: Callable[[list[int]], Any], monkeypatch: pytest.MonkeyPatch,
        lost: str) -> None:
    """The soak counted these as lost (seed 13, one node): the bot's link broke as its
    reply was in flight, no acknowledgement came, and the bot did not send it again lest
    it be said twice. On a server offering send_once the reply carries a key and goes
    again once the bot is back: whether the server had it (only its acknowledgement was
    lost) or not (the reply never got there), the person sees it exactly once. The send
    ends as the drop is noticed, so the reply goes again at once after the reconnect, not
    after ``connection_timeout`` (30 s here)."""
    monkeypatch.setattr(gated, "OPEN", asyncio.Event())
    JOURNAL.clear()
    proxy: TcpProxy = await proxy_factory([int(server.url.rsplit(":", 1)[1])])
    session = await server.sign_in("hana@example.com")
    async with gatekeeper_waiting(server.url, proxy.url, session, make_client, tmp_path,
                                  **{**FAST, "connection_timeout": 30.0}) as (client, watch):
        assert client.supports("send_once")
        if lost == "the acknowledgement":
            proxy.deafen()  # the reply reaches the server; its acknowledgement is held
            gated.OPEN.set()
            await watch.events.wait_for("message",
                                        lambda m: m["content"] == "through the gate",
                                        timeout=TIMEOUT)
        else:
            proxy.blackhole()  # the reply is held on its way to the server
            gated.OPEN.set()
            await wait_until(lambda: client.tries > 0, what="the reply sent")
        proxy.cut()  # the link breaks with the reply (or its acknowledgement) in flight
        cut_at = time.monotonic()
        proxy.restore()

        await wait_until(lambda: bool(JOURNAL.of("gated", "replied")), 5, "the reply")
        assert time.monotonic() - cut_at < 3.0
        ack = JOURNAL.of("gated", "replied")[0].args["ack"]
        assert ack["status"] == "ok", ack
        assert any(a.get("code") == 408 for a in client.acks), client.acks
        assert ack.get("duplicate") is (True if lost == "the acknowledgement" else None)
        marker = await asyncio.wait_for(watch.client.send("marker"), TIMEOUT)
        await watch.events.wait_for("message", lambda m: m["id"] == marker["message_id"],
                                    timeout=TIMEOUT)
        assert [m["content"] for m in watch.messages].count("through the gate") == 1


@pytest.mark.timeout(60)
async def test_without_send_once_a_reply_with_no_acknowledgement_is_not_sent_again(
        make_client: Callable[..., AsyncClient], tmp_path: Path,
        proxy_factory: Callable[[list[int]], Any], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """History off, the server offers no send_once: a reply whose acknowledgement was
    lost is not sent again (it was delivered: sent again, it would be said twice), and
    the bot says so in its log."""
    monkeypatch.setattr(gated, "OPEN", asyncio.Event())
    JOURNAL.clear()
    async with LocalServer(history=False) as server:
        proxy: TcpProxy = await proxy_factory([int(server.url.rsplit(":", 1)[1])])
        session = await server.sign_in("ines@example.com")
        async with gatekeeper_waiting(server.url, proxy.url, session, make_client, tmp_path,
                                      **FAST) as (client, watch):
            assert not client.supports("send_once")
            proxy.deafen()
            gated.OPEN.set()
            await watch.events.wait_for("message",
                                        lambda m: m["content"] == "through the gate",
                                        timeout=TIMEOUT)
            proxy.cut()
            proxy.restore()
            await wait_until(lambda: bool(JOURNAL.of("gated", "replied")), 20, "the reply")
            assert JOURNAL.of("gated", "replied")[0].args["ack"]["code"] == 408
            marker = await asyncio.wait_for(watch.client.send("marker"), TIMEOUT)
            await watch.events.wait_for("message", lambda m: m["id"] == marker["message_id"],
                                        timeout=TIMEOUT)
            assert [m["content"] for m in watch.messages].count("through the gate") == 1
            assert client.tries == 1
            assert "not sent again, lest it be said twice" in caplog.text
