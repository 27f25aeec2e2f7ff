"""Two server nodes on one Redis behave as one server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.server.helpers import close_client, open_client
from tests.server.proc import ServerProcess
from tests.waiting import wait_until as until

from .helpers import a_client_on_each
from .redis_proc import RedisProcess


async def test_link_requested_on_one_node_works_once_on_the_other(
        node: Callable[..., ServerProcess]) -> None:
    """A magic link made by node 1 signs in on node 2 exactly once."""
    async with node() as one, node() as two:
        link = await one.request_link("alice@example.com")
        other_url = link.url.replace(one.url, two.url)
        async with aiohttp.ClientSession() as http:
            async with http.get(other_url, allow_redirects=False) as first:
                assert "session_token" in first.cookies
            async with http.get(other_url, allow_redirects=False) as second:
                assert "session_token" not in second.cookies
                assert second.headers["Location"] == "/?error=invalid_token"


async def test_rate_limit_is_shared(node: Callable[..., ServerProcess]) -> None:
    """The hourly limit counts requests made through any node."""
    async with node("--magic-link-rate-limit", "2") as one, \
            node("--magic-link-rate-limit", "2") as two:
        await one.request_link("bob@example.com")
        await two.request_link("bob@example.com")
        async with aiohttp.ClientSession() as http, http.post(
                f"{one.url}/auth/request-magic-link", json={"email": "bob@example.com"}) as resp:
            assert resp.status == 429


async def test_messages_names_and_counts_cross_nodes(
        node: Callable[..., ServerProcess], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Connections on two nodes see each other's messages, names, joins and leaves."""
    async with node() as one, node() as two:
        a, b = await a_client_on_each(one, two, "carol@example.com", tmp_path / "s.json")
        seen: dict[str, list[dict]] = {"a": [], "b": []}  # type: ignore[type-arg]
        for name, client in (("a", a), ("b", b)):
            for event in ("message", "user_joined", "user_left", "display_name_changed"):
                client.on(event, lambda d, n=name, e=event: seen[n].append({"event": e, **d}))
        await a.connect()
        await b.connect()
        await until(lambda: any(e["event"] == "user_joined" for e in seen["a"]))
        joined = next(e for e in seen["a"] if e["event"] == "user_joined")
        assert joined["total_connections"] == 2

        await b.set_display_name("Bee")
        ack = await b.send("hello across nodes")
        assert ack["status"] == "ok"
        await until(lambda: any(e["event"] == "message" for e in seen["a"]))
        message = next(e for e in seen["a"] if e["event"] == "message")
        assert (message["content"], message["user"]["display_name"]) == (
            "hello across nodes", "Bee")
        assert any(e["event"] == "display_name_changed" for e in seen["a"])
        assert [e["id"] for e in seen["b"] if e["event"] == "message"] == [ack["message_id"]]

        await b.disconnect()
        await until(lambda: any(e["event"] == "user_left" for e in seen["a"]))
        left = next(e for e in seen["a"] if e["event"] == "user_left")
        assert left["remaining_connections"] == 1
        await a.disconnect()


async def test_counts_of_a_killed_node_are_dropped(
        node: Callable[..., ServerProcess], redis: RedisProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A node killed with SIGKILL stops counting within its heartbeat lifetime (3 s here)."""
    async with node(ROOMZ_NODE_TIMEOUT="3") as one, node(ROOMZ_NODE_TIMEOUT="3") as two:
        session = await one.sign_in("dave@example.com")
        cache = tmp_path / "s.json"
        for server in (one, two):
            SessionCache(cache).save(server.url, session)
        doomed = AsyncClient(two.url, session_cache_file=cache, reconnect=False)
        await doomed.connect()
        await two.kill()
        survivor = AsyncClient(one.url, session_cache_file=cache)
        joins: list[int] = []
        survivor.on("user_joined", lambda d: joins.append(d["total_connections"]))
        await survivor.connect()
        late = AsyncClient(one.url, session_cache_file=cache)
        try:
            # The dead node's count lingers at most its heartbeat lifetime plus one beat.
            async def settled() -> None:
                while True:
                    joins.clear()
                    await late.connect()
                    await until(lambda: bool(joins))
                    if joins[-1] == 2:
                        return
                    await late.disconnect()
                    await asyncio.sleep(1)
            await asyncio.wait_for(settled(), 30)
        finally:
            await late.disconnect()
            await survivor.disconnect()


async def test_rich_messages_cross_nodes_and_questions_are_offered(
        node: Callable[..., ServerProcess], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Markdown sent on one node arrives on the other with its content type; each node's
    ``authenticated`` names questions, which Redis keeps for every node
    (tests/nodes/test_questions_across_nodes.py)."""
    async with node() as one, node() as two:
        a, b = await a_client_on_each(one, two, "erin@example.com", tmp_path / "s.json")
        seen: list[dict] = []  # type: ignore[type-arg]
        b.on("message", seen.append)
        await a.connect()
        await b.connect()
        try:
            for client in (a, b):
                assert client.supports("content_types") and client.supports("questions")
            ack = await a.send("# Hi", content_type="text/markdown")
            await until(lambda: any(m["id"] == ack["message_id"] for m in seen))
            assert seen[-1]["content_type"] == "text/markdown"
        finally:
            await a.disconnect()
            await b.disconnect()


async def test_presence_and_names_skip_the_right_connection_across_nodes(
        node: Callable[..., ServerProcess]) -> None:
    """Raw connections on two nodes hear exactly what PROTOCOL.md section 2 says: the
    newcomer no ``user_joined`` of its own, the renamed one no ``display_name_changed`` of
    its own, the sender its message before its acknowledgement, the one that stays the
    other's ``user_left``."""
    async with node() as one, node() as two:
        token = await one.sign_in("erin@example.com")
        first = await open_client(one.url, token)
        await first.wait_for("authenticated")
        second = await open_client(two.url, token)
        try:
            await second.wait_for("authenticated")
            joined = await first.wait_for("user_joined")
            assert joined["total_connections"] == 2

            assert await second.call("set_display_name", {"display_name": "Bee"}) == {
                "status": "ok", "display_name": "Bee"}
            changed = await first.wait_for("display_name_changed")
            assert changed["connection_id"] == second.connection_id

            # The acknowledgement in the same stream as the events, as it arrives.
            await second.sio.emit("message", {"content": "across"},
                                  callback=second.recorder("ack"))
            ack = await second.wait_for("ack")
            assert [e for e, _ in second.events if e in ("message", "ack")] == ["message", "ack"]
            await first.wait_for("message", lambda d: d["id"] == ack["message_id"])
            assert [e for e, _ in second.events if e in ("user_joined",
                                                         "display_name_changed")] == []
        finally:
            await close_client(second)
        left = await first.wait_for("user_left")
        assert (left["user"]["display_name"], left["remaining_connections"]) == ("Bee", 1)
        await close_client(first)


async def test_a_resuming_connection_that_sends_at_once_is_answered_after_its_greeting(
        node: Callable[..., ServerProcess]) -> None:
    """A connection that resumes (docs/protocol.md 3.7) and sends the moment Socket.IO
    connects, while its replay is still being read from Redis: it hears ``authenticated``,
    then its message, then the acknowledgement (PROTOCOL.md section 2), on either node."""
    async with node() as one, node() as two:
        token = await one.sign_in("erin@example.com")
        writer = await open_client(one.url, token)
        for n in range(300):  # a replay of three events to read and send
            assert (await writer.call("message", {"content": f"earlier {n}"}))["status"] == "ok"
        await writer.wait_for("message", lambda d: d["content"] == "earlier 299")
        since = {"history": {"after": writer.named("message")[0]["cursor"]}}
        await close_client(writer)
        heard = []
        for _ in range(4):
            for url in (one.url, two.url):
                client = await open_client(url, token, auth=since)
                try:
                    await client.sio.emit("message", {"content": "at once"},
                                          callback=client.recorder("ack"))
                    mine = (await client.wait_for("ack"))["message_id"]
                    await client.wait_for("message", lambda d, mine=mine: d["id"] == mine)
                    heard.append([event for event, data in client.events
                                  if event in ("authenticated", "ack")
                                  or event == "message" and data["id"] == mine])
                finally:
                    await close_client(client)
        assert heard == [["authenticated", "message", "ack"]] * 8


async def test_the_others_hear_a_connection_joined_before_its_first_message(
        node: Callable[..., ServerProcess]) -> None:
    """A connection on one node that sends the moment it connects: a connection of the same
    user on the other node hears ``user_joined`` before that message."""
    async with node() as one, node() as two:
        token = await one.sign_in("erin@example.com")
        stays = await open_client(one.url, token)
        try:
            await stays.wait_for("authenticated")
            for n in range(8):
                newcomer = await open_client(two.url, token)
                try:
                    mine = (await newcomer.call("message", {"content": f"hello {n}"}))["message_id"]
                    await stays.wait_for("message", lambda d, mine=mine: d["id"] == mine)
                finally:
                    await close_client(newcomer)
                await stays.wait_for("user_left", start=len(stays.events) - 1)
            heard = [event for event, _ in stays.events if event in ("user_joined", "message")]
            assert heard == ["user_joined", "message"] * 8
        finally:
            await close_client(stays)
