"""The published Roomz 0.4.0 Python client, unchanged, against our server."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from roomz import AsyncClient
from roomz.server.local import LocalServer

SCRIPT = Path(__file__).with_name("published_client.py")


def published_env(home: Path) -> dict[str, str]:
    """The published client's environment: ours with ``HOME`` at ``home``, and without
    ``PYTHONPATH``, where a checkout's ``roomz`` would hide the published one."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "HOME": str(home)}


async def run_published_client(python: Path, server: LocalServer, email: str,
                               home: Path) -> dict[str, Any]:
    """Run the published client's scenario (``HOME`` at ``home``), feeding it magic-link
    tokens as it asks."""
    # Its cookie jar ignores IP-address hosts, so it must be given a host name.
    url = server.url.replace("127.0.0.1", "localhost")
    proc = await asyncio.create_subprocess_exec(
        str(python), str(SCRIPT), url, email,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=published_env(home),
    )
    assert proc.stdin and proc.stdout and proc.stderr
    seen = 0
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            if not line:
                err = (await asyncio.wait_for(proc.stderr.read(), 5)).decode()
                raise AssertionError(f"published client ended early:\n{err}")
            msg = json.loads(line)
            if "need_token" in msg:
                link = await server.next_link(msg["need_token"], after=seen)
                seen = server.links.index(link) + 1
                proc.stdin.write(link.token.encode() + b"\n")
                await proc.stdin.drain()
            else:
                return msg["result"]  # type: ignore[no-any-return]
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 5)


async def test_published_client_signs_in_sends_receives_and_names(
    server: LocalServer, published_python: Path, tmp_path: Path
) -> None:
    """A user of the published client signs in twice, names one connection, and chats;
    1,200 ``&`` are refused with an error acknowledgement it hands back, 1,000 arrive whole."""
    result = await run_published_client(published_python, server, "alice@example.com",
                                        tmp_path)

    assert result["user"] == {"id": "user:alice@example.com", "email": "alice@example.com",
                              "display_name": None}
    assert result["name_ack"] == {"status": "ok", "display_name": "Alice"}
    assert result["send_ack"]["status"] == "ok" and result["reply_ack"]["status"] == "ok"
    events = result["events"]
    kinds = [(who, name) for who, name, _ in events]
    assert ("first", "user_joined") in kinds
    renamed = next(d for who, name, d in events
                   if (who, name) == ("second", "display_name_changed"))
    assert renamed["user"]["display_name"] == "Alice"
    messages = [(who, d["content"], d["user"]["display_name"])
                for who, name, d in events if name == "message"]
    sent = "hello &lt;from&gt; the published client"
    assert ("first", sent, "Alice") in messages and ("second", sent, "Alice") in messages
    assert ("first", "and back", None) in messages and ("second", "and back", None) in messages
    assert result["too_long_ack"] == {
        "error": "Message too long: 1200 characters, at most 1000", "code": 400}
    assert result["fits_ack"]["status"] == "ok"
    whole = "&amp;" * 1000
    assert ("first", whole, "Alice") in messages and ("second", whole, "Alice") in messages
    assert len(messages) == 6  # nothing of the refused message reached anyone
    left = next(d for who, name, d in events if (who, name) == ("first", "user_left"))
    assert left["remaining_connections"] == 1


async def test_the_published_client_reads_rich_messages_as_their_text(
    server: LocalServer, published_python: Path, tmp_path: Path
) -> None:
    """Markdown, code and a question from our client reach the published 0.4.0 client as
    messages whose content is readable text (the question's: its numbered answers); the
    extra fields do not trouble it, and it stays connected. It cannot answer, so the
    question times out to its default."""
    url = server.url.replace("127.0.0.1", "localhost")
    proc = await asyncio.create_subprocess_exec(
        str(published_python), str(SCRIPT.with_name("published_listener.py")), url,
        "alice@example.com", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=published_env(tmp_path))
    assert proc.stdin and proc.stdout and proc.stderr

    async def said() -> dict[str, Any]:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)  # type: ignore[union-attr]
        if not line:
            err = (await asyncio.wait_for(proc.stderr.read(), 5)).decode()  # type: ignore[union-attr]
            raise AssertionError(f"published client ended early:\n{err}")
        return json.loads(line)  # type: ignore[no-any-return]

    ours = AsyncClient(server.url)
    try:
        asked = await said()
        link = await server.next_link(asked["need_token"])
        proc.stdin.write(link.token.encode() + b"\n")
        await proc.stdin.drain()
        assert await said() == {"ready": True}
        await asyncio.wait_for(ours.connect((await server.request_link(asked["need_token"]))
                                            .token), 10)
        await ours.send("# Report\n\n| a | b |", content_type="text/markdown", subject="R")
        await ours.send("x = 1", content_type="text/code", language="python")
        answer = await asyncio.wait_for(ours.ask("Deploy?", ["yes", "no"], timeout=1,
                                                 default="no"), 15)
        await ours.send("DONE")
        result = (await said())["result"]
    finally:
        await ours.disconnect()
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 5)
    assert (answer.choice, answer.timed_out) == ("no", True)
    assert result["connected"] is True
    contents = [m["content"] for m in result["messages"]]
    assert contents == ["# Report\n\n| a | b |", "x = 1", "Deploy?\n1. yes\n2. no",
                        "No answer to “Deploy?” within 1 s: no.", "DONE"]
    assert result["messages"][0]["content_type"] == "text/markdown"  # there, if it looks
