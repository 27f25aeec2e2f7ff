"""Whatever redis-py raises as the message bus's connection goes, the node resubscribes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from roomz.server.redis_state import RedisFanOutManager, connect

from .helpers import TIMEOUT

#: What the fake answers besides SUBSCRIBE (anything else: OK).
ANSWERS = {b"PING": b"+PONG\r\n", b"TIME": b"*2\r\n$10\r\n1796230000\r\n$1\r\n0\r\n"}


class GarblingRedis:
    """A loopback server that answers like Redis until a client subscribes, then sends a
    push redis-py cannot read as a message (``IndexError`` inside redis-py, no RedisError)."""

    def __init__(self) -> None:
        self.subscribes = 0
        self.resubscribed = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def __aenter__(self) -> GarblingRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                words = await self._command(reader)
                if words[0].upper() != b"SUBSCRIBE":  # a health check, TIME, CLIENT SETINFO
                    writer.write(ANSWERS.get(words[0].upper(), b"+OK\r\n"))
                    continue
                self.subscribes += 1
                if self.subscribes == 2:
                    self.resubscribed.set()
                channel = words[1]
                writer.write(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel),
                                                                               channel))
                writer.write(b"*1\r\n$7\r\nmessage\r\n")  # no channel, no data
                await writer.drain()
        writer.close()

    @staticmethod
    async def _command(reader: asyncio.StreamReader) -> list[bytes]:
        count = int((await reader.readuntil(b"\r\n"))[1:-2])
        words = []
        for _ in range(count):
            size = int((await reader.readuntil(b"\r\n"))[1:-2])
            words.append((await reader.readexactly(size + 2))[:-2])
        return words


@pytest.mark.timeout(30)
async def test_an_error_redis_py_raises_outside_its_own_is_a_lost_bus(
        caplog: pytest.LogCaptureFixture) -> None:
    """The soak saw python-socketio log "Unexpected Error in pubsub listening thread" with a
    traceback as Redis restarted: redis-py raised something other than a RedisError from
    the subscription. The node then resubscribed without waiting, on its next publishes,
    for the other nodes to listen again. Now any error loses the bus the same way: one
    warning line that names it, and the wait."""
    caplog.set_level(logging.DEBUG, "roomz.server")
    async with GarblingRedis() as redis:
        publisher = connect(redis.url)
        manager = RedisFanOutManager(redis.url, publisher)
        listening = manager._listen()
        heard = asyncio.ensure_future(anext(listening))
        try:
            await asyncio.wait_for(redis.resubscribed.wait(), TIMEOUT)
        finally:
            heard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heard
            await listening.aclose()
            await publisher.aclose()
    lost = [r for r in caplog.records if r.getMessage().startswith("message bus lost")]
    assert lost and lost[0].levelno == logging.WARNING, caplog.text
    assert lost[0].getMessage().startswith("message bus lost (IndexError: "), lost[0].getMessage()
    assert lost[0].exc_info is None  # one line in the log, the traceback only at debug
    assert manager._recovering  # the next publish waits for the other nodes to listen again
