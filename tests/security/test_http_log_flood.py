"""A stranger sends malformed HTTP by the thousand: the server's log grows by a few quiet
lines, not a traceback per request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.server.proc import ServerProcess

from .hostile_clients import settled

OVERSIZED = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: roomz\r\n\r\n"  # over 8 KB
BAD_HEADER = b"GET / HTTP/1.1\r\nHost: roomz\r\nNo colon here\r\n\r\n"


async def send_all(port: int, request: bytes, count: int, at_once: int = 20) -> int:
    """Send ``request`` on ``count`` connections, ``at_once`` at a time, reading each answer;
    returns how many were answered 400."""
    gate = asyncio.Semaphore(at_once)

    async def one() -> bool:
        async with gate:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            answer = b""
            try:
                writer.write(request)
                # The server may reset the connection after its answer: keep what came first.
                while chunk := await asyncio.wait_for(reader.read(65536), 5):
                    answer += chunk
            except ConnectionError:
                pass
            finally:
                writer.close()
            return answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")

    return sum(await asyncio.gather(*(one() for _ in range(count))))


async def test_bad_requests_by_the_thousand_add_a_few_quiet_lines(tmp_path: Path) -> None:
    """2000 oversized request lines and 200 malformed headers to ``roomz-server``: each is
    answered 400, and the log grows by a handful of lines with no traceback."""
    async with ServerProcess(state_home=tmp_path, env={"JWT_SECRET_KEY": "s" * 40}) as proc:
        assert proc.port is not None
        before = len(proc.lines)

        answered = await send_all(proc.port, OVERSIZED, 2000)
        answered += await send_all(proc.port, BAD_HEADER, 200)
        await settled(proc)

        added = proc.lines[before:]
    assert answered >= 2000, answered  # a few may be refused if they arrive too fast
    assert len(added) <= 10, "\n".join(added[:20])
    assert not any("Traceback" in line for line in added), "\n".join(added[:20])
    assert any("bad HTTP request from 127.0.0.1" in line for line in added), added

