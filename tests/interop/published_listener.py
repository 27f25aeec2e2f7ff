"""Runs INSIDE the published roomz==0.4.0 venv: its AsyncClient signs in, says it is ready,
and keeps every message until one says DONE. Lines of JSON, as published_client.py:
``{"need_token": EMAIL}`` (the token comes on stdin), ``{"ready": true}``, then
``{"result": ...}``."""

import asyncio
import json
import sys

from roomz.client import AsyncClient
from roomz.client.config import ClientConfig, RoomzConfig


def say(obj):
    print(json.dumps(obj), flush=True)


async def main(url, email):
    messages = []
    client = AsyncClient(config=RoomzConfig(client=ClientConfig(server_url=url)), reconnect=False)
    client.on("message", messages.append)
    assert await client.login(email) is True
    say({"need_token": email})
    token = (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()
    await client.connect(session_token=token)
    for _ in range(500):
        if client.connected:
            break
        await asyncio.sleep(0.01)
    say({"ready": True})
    for _ in range(2000):
        if any(m.get("content") == "DONE" for m in messages):
            break
        await asyncio.sleep(0.01)
    connected = client.connected
    await client.disconnect()
    say({"result": {"messages": messages, "connected": connected}})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
