"""``who`` on several nodes: a user's connections on every live node, as on one node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from roomz.session_cache import SessionCache
from tests.cli.helpers import open_terminal, text_of
from tests.server.helpers import ChatClient, signed_in
from tests.server.proc import ServerProcess

from .helpers import eventually
from .redis_proc import RedisProcess

ANN = "ann@example.com"
BOT = {"client": {"kind": "bot", "name": "helper"}}
PAGE = {"client": {"kind": "page"}}
TERMINAL = {"client": {"kind": "terminal"}}
#: A node counted dead within 3 s of its last beat; it beats every second.
QUICK = {"ROOMZ_NODE_TIMEOUT": "3"}


async def listed(client: ChatClient) -> list[tuple[Any, ...]]:
    """``client``'s ``who``: each connection's id, kind, name, display name and ``you``."""
    ack = await client.call("who", {})
    assert ack.get("status") == "ok", ack
    return [(c["connection_id"], c["kind"], c["name"], c["display_name"], c["you"])
            for c in ack["connections"]]


async def test_who_lists_the_connections_on_both_nodes_from_either(
        node: Callable[..., ServerProcess]) -> None:
    """A bot on one node and a page on the other: either lists both, oldest first, itself
    marked, with kinds and names; a name set on one node shows from the other; both name
    questions and who among their features."""
    async with node() as one, node() as two:
        token = await one.sign_in(ANN)
        async with signed_in(one.url, token, auth=BOT) as bot, \
                signed_in(two.url, token, auth=PAGE) as page:
            features = ["content_types", "questions", "who", "send_once"]
            assert bot.authenticated["features"] == features
            assert page.authenticated["features"] == features
            from_bot, from_page = await listed(bot), await listed(page)
            assert from_bot == [(bot.connection_id, "bot", "helper", None, True),
                                (page.connection_id, "page", None, None, False)]
            assert from_page == [(bot.connection_id, "bot", "helper", None, False),
                                 (page.connection_id, "page", None, None, True)]
            ack = await page.call("set_display_name", {"display_name": "Ann's <phone>"})
            assert ack["status"] == "ok"
            assert (await listed(bot))[1] == (page.connection_id, "page", None,
                                              "Ann&#x27;s &lt;phone&gt;", False)


async def test_who_never_lists_another_users_connections(
        node: Callable[..., ServerProcess]) -> None:
    """Bob has connections on both nodes too: Ann's list holds hers only, and his his."""
    async with node() as one, node() as two:
        ann, bob = await one.sign_in(ANN), await two.sign_in("bob@example.com")
        async with signed_in(one.url, ann, auth=TERMINAL) as hers, \
                signed_in(one.url, bob, auth=BOT) as his_here, \
                signed_in(two.url, bob, auth=PAGE) as his_there, \
                signed_in(two.url, ann, auth=PAGE) as hers_there:
            assert [c[0] for c in await listed(hers)] == [hers.connection_id,
                                                          hers_there.connection_id]
            assert [c[0] for c in await listed(his_there)] == [his_here.connection_id,
                                                               his_there.connection_id]


async def test_a_killed_nodes_connections_leave_the_list_once_it_is_counted_out(
        node: Callable[..., ServerProcess]) -> None:
    """A node killed with SIGKILL cannot say its connections went: they stay listed until
    it is counted dead (3 s here), then go."""
    async with node(**QUICK) as one, node(**QUICK) as two:
        token = await one.sign_in(ANN)
        async with signed_in(one.url, token, auth=TERMINAL) as survivor, \
                signed_in(two.url, token, auth=BOT) as doomed:
            assert [c[0] for c in await listed(survivor)] == [survivor.connection_id,
                                                              doomed.connection_id]
            await two.kill()

            async def only_the_survivor() -> None:
                assert [c[0] for c in await listed(survivor)] == [survivor.connection_id]

            await eventually(only_the_survivor, timeout=20)


async def test_a_stopped_nodes_connections_leave_the_list_at_once(
        node: Callable[..., ServerProcess]) -> None:
    """A node stopped cleanly takes its connections off the list as it stops, long before
    it would be counted dead (15 s by default)."""
    async with node() as one, node() as two:
        token = await one.sign_in(ANN)
        async with signed_in(one.url, token, auth=TERMINAL) as staying, \
                signed_in(two.url, token, auth=BOT):
            assert len(await listed(staying)) == 2
            assert await two.stop() == 0
            assert [c[0] for c in await listed(staying)] == [staying.connection_id]


async def test_who_while_redis_is_down_says_try_again_then_lists_everything(
        node: Callable[..., ServerProcess], redis: RedisProcess) -> None:
    """Redis unreachable: ``who`` is a 503 that says to try again (no 501, no traceback);
    once Redis is back and the nodes have written their connections back, it lists the
    connections of both nodes again."""
    async with node(**QUICK) as one, node(**QUICK) as two:
        token = await one.sign_in(ANN)
        async with signed_in(one.url, token, auth=TERMINAL) as here, \
                signed_in(two.url, token, auth=BOT) as there:
            everyone = [here.connection_id, there.connection_id]
            assert [c[0] for c in await listed(here)] == everyone
            redis.kill()
            assert await here.call("who", {}, timeout=10) == {
                "error": "Connections not listed: the server cannot reach its other nodes; "
                         "try again shortly", "code": 503}
            await redis.start()  # empty: the nodes write their connections back

            async def all_listed() -> None:
                assert [c[0] for c in await listed(here)] == everyone
                assert [c[0] for c in await listed(there)] == everyone

            await eventually(all_listed)
            assert "Traceback" not in one.stderr + two.stderr


async def test_the_terminal_says_why_who_was_refused(
        node: Callable[..., ServerProcess], redis: RedisProcess, tmp_path: Path) -> None:
    """/who in the terminal lists its connection on a node; with Redis down, it shows the
    server's reason (try again shortly), not that the terminal is disconnected."""
    async with node() as one:
        SessionCache(tmp_path / "session.json").save(one.url, await one.sign_in(ANN))
        async with open_terminal(one.url, tmp_path) as term:
            await term.wait_for("Connected to")
            await term.command("/who", "1 connection:")
            redis.kill()
            refused = text_of(await term.command("/who", "Connections not listed"))
            assert refused.endswith("Connections not listed: the server cannot reach its "
                                    "other nodes; try again shortly"), refused
