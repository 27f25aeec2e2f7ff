"""Runs INSIDE the published roomz==0.4.0 venv: drives its own AsyncClient against a server.

Protocol with the test, one JSON object per line: this script prints ``{"need_token": EMAIL}``
after each ``login()`` and reads the token from stdin; at the end it prints ``{"result": ...}``.
"""

import asyncio
import json
import sys

from roomz.client import AsyncClient
from roomz.client.config import ClientConfig, RoomzConfig


def say(obj):
    print(json.dumps(obj), flush=True)


async def signed_in_client(url, email, events, label):
    client = AsyncClient(config=RoomzConfig(client=ClientConfig(server_url=url)), reconnect=False)
    for name in ("authenticated", "message", "user_joined", "user_left", "display_name_changed"):
        client.on(name, lambda data, name=name: events.append([label, name, data]))
    assert await client.login(email) is True
    say({"need_token": email})
    token = (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()
    await client.connect(session_token=token)
    return client


async def until(predicate, timeout=5.0):
    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def main(url, email):
    events = []
    first = await signed_in_client(url, email, events, "first")
    await until(lambda: first.connected)
    second = await signed_in_client(url, email, events, "second")
    await until(lambda: second.connected)
    name_ack = await first.set_display_name("Alice")
    await until(lambda: any(e[0] == "second" and e[1] == "display_name_changed" for e in events))
    send_ack = await first.send("hello <from> the published client")
    await until(lambda: sum(1 for e in events if e[1] == "message") >= 2)
    reply_ack = await second.send("and back")
    await until(lambda: sum(1 for e in events if e[1] == "message") >= 4)
    too_long_ack = await first.send("&" * 1200)
    fits_ack = await first.send("&" * 1000)
    await until(lambda: sum(1 for e in events if e[1] == "message") >= 6)
    user = first.user
    await second.disconnect()
    await until(lambda: any(e[0] == "first" and e[1] == "user_left" for e in events))
    await first.disconnect()
    say({"result": {"name_ack": name_ack, "send_ack": send_ack, "reply_ack": reply_ack,
                    "too_long_ack": too_long_ack, "fits_ack": fits_ack, "user": user,
                    "events": events}})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
