"""The minimal Roomz-shaped chat server on bare python-socketio + aiohttp, for
``benchmarks/server_load.py``: ``python server.py PORT``, ``JWT_SECRET_KEY`` in the environment.

The twin of ``benchmarks/node/server.js``: cookie sign-in (the HS256 JWT checked as ours
checks it), ``authenticated``, ``message`` acknowledged and emitted to the user's room. No
validation beyond the content being a string, no escaping, no presence, no limits; every
python-socketio and aiohttp setting at its default (the asyncio event loop included), as a
team would start.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import jwt
import socketio
from aiohttp import web

SECRET = os.environ["JWT_SECRET_KEY"]
sio = socketio.AsyncServer(async_mode="aiohttp")
users: dict[str, dict[str, Any]] = {}  # sid -> the ``user`` object, with its connection id


def session_token(cookie_header: str) -> str | None:
    """The ``session_token`` value of a Cookie header."""
    for pair in cookie_header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name == "session_token":
            return value
    return None


@sio.on("connect")
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    """Accept a connection whose cookie holds a valid session; greet it."""
    try:
        claims = jwt.decode(session_token(environ.get("HTTP_COOKIE", "")) or "", SECRET,
                            algorithms=["HS256"])
    except jwt.InvalidTokenError as exc:
        raise socketio.exceptions.ConnectionRefusedError(f"Not authenticated: {exc}") from None
    email = claims["email"]
    channel = f"user:{email}"
    user = {"id": channel, "email": email, "display_name": None}
    users[sid] = {"user": user, "channel": channel, "connection_id": str(uuid.uuid4())}
    await sio.enter_room(sid, channel)
    await sio.emit("authenticated", {
        "user": user, "channel": channel,
        "server_time": datetime.now(timezone.utc).isoformat(),
        "connection_id": users[sid]["connection_id"]}, to=sid)


@sio.on("disconnect")
async def disconnect(sid: str, reason: Any = None) -> None:
    """Forget a closed connection."""
    users.pop(sid, None)


@sio.on("message")
async def message(sid: str, data: Any) -> dict[str, Any]:
    """Emit the message to the sender's room; acknowledge it."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
        return {"error": "Missing or invalid 'content' field", "code": 400}
    me = users[sid]
    message_id = str(uuid.uuid4())
    timestamp = datetime.now(timezone.utc).isoformat()
    await sio.emit("message", {"id": message_id, "user": me["user"], "content": data["content"],
                               "timestamp": timestamp, "connection_id": me["connection_id"]},
                   room=me["channel"])
    return {"status": "ok", "message_id": message_id, "timestamp": timestamp}


if __name__ == "__main__":
    app = web.Application()
    sio.attach(app)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
