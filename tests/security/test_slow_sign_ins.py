"""Signing in while the shared state answers slowly: the sign-in deadline waits for the
answer, and a socket closed meanwhile leaves no connection behind."""

from __future__ import annotations

import asyncio
from typing import Any

from roomz.server import internals
from roomz.server.local import LocalServer
from roomz.server.presence import Presence
from roomz.server.who import ClientInfo
from tests.waiting import wait_until

from .hostile_clients import RawSocket, http_session

ALICE = "alice@example.com"
CONNECT_TIMEOUT = 0.3


class SlowJoins(Presence):
    """Connection counts whose joins wait: ``delay`` seconds, or until ``release`` is set."""

    def __init__(self, delay: float | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def join(self, email: str, connection_id: str, user: dict[str, Any],
                   client: ClientInfo) -> int:
        self.entered.set()
        if self.delay is not None:
            await asyncio.sleep(self.delay)
        else:
            await self.release.wait()
        return await super().join(email, connection_id, user, client)


def slow_presence(server: LocalServer, store: SlowJoins) -> SlowJoins:
    """Give the server's chat ``store`` for its connection counts."""
    server.server.chat.presence = store
    return store


async def test_a_sign_in_slower_than_the_connect_timeout_is_not_cut_off() -> None:
    """Counting the connection takes ten times ``connect_timeout``: the socket is not closed
    meanwhile; it signs in, and once it closes nothing of it is left."""
    async with LocalServer(connect_timeout=CONNECT_TIMEOUT) as server, \
            http_session() as http:
        token = await server.sign_in(ALICE)
        presence = slow_presence(server, SlowJoins(delay=10 * CONNECT_TIMEOUT))
        chat = server.server.chat
        raw = await RawSocket.open(http, server.url, token)

        await raw.send("40")
        await raw.wait_text(lambda text: text.startswith("40{"), timeout=5)
        await raw.wait_text(lambda text: text.startswith('42["authenticated"'))
        await raw.close()

        await wait_until(lambda: not chat.connections and not presence.counts, 5,
                         lambda: f"no connection left, got {chat.connections}, "
                                 f"{presence.counts}")


async def test_a_socket_closed_while_its_sign_in_waits_leaves_nothing_behind() -> None:
    """The server closes a socket (as a ping timeout or a slow reader's reset does) while its
    sign-in waits on the store: once the store answers, the connection is ended, its count
    and its place in the user's channel gone."""
    async with LocalServer() as server, http_session() as http:
        token = await server.sign_in(ALICE)
        presence = slow_presence(server, SlowJoins())
        sio, chat = server.server.sio, server.server.chat
        raw = await RawSocket.open(http, server.url, token)
        await raw.send("40")
        await asyncio.wait_for(presence.entered.wait(), 5)
        (eio_sid,) = sio.engine_sockets
        sid = sio.manager.sid_from_eio_sid(eio_sid, "/")

        await internals.close_now(sio.eio.sockets[eio_sid])
        presence.release.set()

        await wait_until(lambda: not chat.connections and not presence.counts, 5,
                         lambda: f"no connection left, got {chat.connections}, "
                                 f"{presence.counts}")
        assert not sio.manager.is_connected(sid, "/")
        assert list(sio.manager.get_participants("/", f"user:{ALICE}")) == []
        await raw.close()
