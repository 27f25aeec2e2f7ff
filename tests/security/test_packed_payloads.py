"""A stranger packs one long-polling POST with as many packets as it can hold: the payload
is refused at once, and the server goes on answering everyone else meanwhile."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from roomz.server.internals import MAX_PAYLOAD_PACKETS
from roomz.server.local import LocalServer
from roomz.server.request_bodies import MAX_BODY_BYTES

from .hostile_clients import POLLING_PATH, TIMEOUT, http_session, polling_session

#: Seconds ``/healthz`` may take while such a payload is handled. The event loop used to be
#: held for about 2 s by one payload of a megabyte (500,000 pongs); refusing it takes
#: milliseconds, so this leaves a busy machine plenty.
HEALTHY_SECONDS = 1.0


def packed(packet: str, count: int) -> bytes:
    """A long-polling payload of ``count`` copies of ``packet``."""
    return "\x1e".join([packet] * count).encode()


async def post(http: aiohttp.ClientSession, url: str, sid: str, body: bytes) -> int:
    """POST ``body`` to the long-polling session ``sid``; the status."""
    async with http.post(f"{url}{POLLING_PATH}&sid={sid}", data=body,
                         headers={"Content-Type": "text/plain;charset=UTF-8"}) as resp:
        return resp.status


async def healthz_seconds(url: str) -> float:
    """How long ``GET /healthz`` takes from another client address (it must answer 200)."""
    async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as other:
        started = time.monotonic()
        async with other.get(url + "/healthz") as resp:
            assert resp.status == 200
        return time.monotonic() - started


async def test_one_packet_more_than_a_payload_may_hold_is_refused(server: LocalServer) -> None:
    """A POST of ``MAX_PAYLOAD_PACKETS + 1`` pongs from a socket that never signed in is
    answered 400 and its socket is closed; one of ``MAX_PAYLOAD_PACKETS`` is accepted."""
    async with http_session() as http:
        fits, too_many = await polling_session(server.url), await polling_session(server.url)

        assert await post(http, server.url, fits, packed("3", MAX_PAYLOAD_PACKETS)) == 200
        assert await post(http, server.url, too_many,
                          packed("3", MAX_PAYLOAD_PACKETS + 1)) == 400
        assert too_many not in server.server.sio.engine_sockets
        assert fits in server.server.sio.engine_sockets


async def test_a_megabyte_of_pongs_is_refused_without_holding_up_the_server(
        server: LocalServer) -> None:
    """A stranger's handshake POSTs a payload of a megabyte of pongs (500,000 of them):
    400 at once, and ``/healthz`` answers meanwhile within a second."""
    body = packed("3", (MAX_BODY_BYTES + 1) // 2)
    assert len(body) <= MAX_BODY_BYTES
    async with http_session() as http:
        sid = await polling_session(server.url)

        posted = asyncio.create_task(post(http, server.url, sid, body))
        healthz = await healthz_seconds(server.url)
        status = await asyncio.wait_for(posted, TIMEOUT)

    assert status == 400
    assert healthz < HEALTHY_SECONDS, f"/healthz took {healthz:.2f} s"
