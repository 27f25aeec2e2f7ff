"""A bot's reply that the server cannot take just now (Redis away) is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from roomz_bots import Bot, load_plugin
from tests.bots.sample_plugins import JOURNAL, gated
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess

from .helpers import FAST, TIMEOUT, Watch, wait_until


class AnswersKept(AsyncClient):
    """A client that keeps every acknowledgement its sends got."""

    acks: list[dict[str, Any]]

    async def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Send, as ever; the acknowledgement is kept in :attr:`acks` too."""
        ack = await super().send(*args, **kwargs)
        self.acks.append(ack)
        return ack


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
        person = make_client(one.url, session)
        watch = Watch("person", person)
        SessionCache(tmp_path / "bot.json").save(one.url, session)
        client = AnswersKept(one.url, session_cache_file=tmp_path / "bot.json",
                             reconnect_delay=FAST["reconnect_delay"])
        client.acks = []
        bot = Bot("gatekeeper", client, [load_plugin(gated)], data_dir=tmp_path / "bots")
        await asyncio.wait_for(person.connect(), TIMEOUT)
        await asyncio.wait_for(bot.start(), TIMEOUT)
        try:
            assert (await asyncio.wait_for(person.send("!gated"), TIMEOUT))["status"] == "ok"
            await wait_until(lambda: bool(JOURNAL.of("gated", "waiting")), what="the command")

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
        finally:
            await asyncio.wait_for(bot.stop(), TIMEOUT * 2)
