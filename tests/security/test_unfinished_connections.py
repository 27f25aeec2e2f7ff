"""Engine.IO connections that never finish signing in are closed, count toward the limit,
and one address may hold only a few of them."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from roomz.server.local import LocalServer

from .hostile_clients import POLLING_PATH, RawSocket, http_session

ALICE = "alice@example.com"
SLACK = 4.0  # seconds beyond connect_timeout for the server to close them (a shared machine)


async def test_sockets_that_never_sign_in_are_closed_after_connect_timeout() -> None:
    """200 sockets kept alive with pongs: those that never CONNECT, those refused for a bad
    cookie and one that left its namespace are all closed once connect_timeout has passed."""
    # 200 opened at once from one address: more than the idle-connection cap lets through,
    # and more unfinished ones than one address may hold.
    async with LocalServer(connect_timeout=1.0, ping_interval=0.5, ping_timeout=5.0,
                           max_idle_connections_per_address=1000,
                           max_unfinished_per_address=1000) as server, \
            http_session() as http:
        token = await server.sign_in(ALICE)
        silent = await asyncio.gather(*(RawSocket.open(http, server.url) for _ in range(150)))
        refused = await asyncio.gather(*(RawSocket.open(http, server.url, "not-a-jwt")
                                         for _ in range(49)))
        for raw in refused:
            await raw.send("40")
            await raw.wait_text(lambda text: text.startswith("44"))  # CONNECT_ERROR
        left = await RawSocket.open(http, server.url, token)
        await left.sign_in()
        await left.send("41")  # leaves the namespace, keeps the Engine.IO socket
        every = [*silent, *refused, left]

        # Twice the timeout for the one that signed in first: it is checked once it has left.
        closed = await asyncio.gather(*(raw.wait_closed(2 * 1.0 + SLACK) for raw in every))

        still_open = closed.count(False)
        assert still_open == 0, f"{still_open} of {len(every)} unfinished sockets still open"
        assert any(text == "1" for text in silent[0].texts)  # told with Engine.IO's CLOSE
        for raw in every:
            await raw.close()


async def test_handshakes_beyond_max_connections_are_refused_503() -> None:
    """Unfinished sockets count toward max_connections: one more handshake is refused with 503
    "Server full" (polling and WebSocket alike, an empty ``sid`` too) until the unfinished
    ones have been closed."""
    async with LocalServer(max_connections=5, connect_timeout=1.0) as server, \
            http_session() as http:
        holders = await asyncio.gather(*(RawSocket.open(http, server.url) for _ in range(5)))

        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling") as resp:
            status, body = resp.status, await resp.json(content_type=None)
        # An empty sid is no sid to engine.io: a handshake, refused like the others.
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling&sid=") as resp:
            empty_sid_status = resp.status
        try:
            refused_ws = await RawSocket.open(http, server.url)
        except aiohttp.WSServerHandshakeError as exc:
            ws_status = exc.status
        else:
            await refused_ws.close()
            ws_status = 101

        assert (status, empty_sid_status, ws_status) == (503, 503, 503)
        assert body["detail"] == "Server full: 5 connections; try again later"
        assert all(await asyncio.gather(*(raw.wait_closed(1.0 + SLACK) for raw in holders)))
        later = await RawSocket.open(http, server.url)  # room again once they are gone
        await later.close()


async def test_one_address_cannot_fill_the_server_with_unfinished_sockets() -> None:
    """On a server of 30 connections, 30 long-polling handshakes from 127.0.0.1 over one
    keep-alive connection: beyond its 20 unfinished sockets that address is refused 503,
    so someone at 127.0.0.2 still connects and signs in."""
    async with LocalServer(max_connections=30, max_unfinished_per_address=20) as server, \
            http_session() as http:
        token = await server.sign_in(ALICE)
        answers = []
        for _ in range(30):
            async with http.get(server.url + POLLING_PATH) as resp:
                answers.append((resp.status, await resp.text()))

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                local_addr=("127.0.0.2", 0))) as elsewhere:
            other = await RawSocket.open(elsewhere, server.url, token)
            await other.sign_in()
            await other.close()

    statuses = [status for status, _ in answers]
    assert statuses == [200] * 20 + [503] * 10, statuses
    assert json.loads(answers[-1][1])["detail"] == (
        "Too many connections from your address have not signed in (at most 20); sign in on "
        "those or try again later")
