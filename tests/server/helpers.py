"""Small helpers for server tests: a recording Socket.IO client and the protocol's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import socketio

from tests.events import Events

TIMEOUT = 5.0
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
INVALID_FORMAT = {"error": "Invalid message format", "code": 400}
INVALID_CONTENT = {"error": "Missing or invalid 'content' field", "code": 400}
INVALID_NAME = {"error": "Invalid display name: must be 1-50 characters, no newlines", "code": 400}
REFUSED = "One or more namespaces failed to connect"

Event = tuple[str, Any]


def is_iso8601_with_zone(value: object) -> bool:
    """True for an ISO 8601 timestamp string that names its time zone."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def assert_problem(body: object, status: int, instance: str = "/auth/request-magic-link") -> None:
    """Assert ``body`` is RFC 7807 problem JSON for ``status`` with a detail to show people."""
    assert isinstance(body, dict), body
    assert set(body) == PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["instance"] == instance
    assert isinstance(body["type"], str) and body["type"].startswith("https://")
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]


def link_sent(body: object) -> object:
    """The answer to a link request without its ``sign_in`` extension (tested on its own)."""
    if isinstance(body, dict) and "sign_in" in body:
        return {key: value for key, value in body.items() if key != "sign_in"}
    return body


def assert_ok_ack(ack: object) -> None:
    """Assert ``ack`` is the documented acknowledgement of a sent message."""
    assert isinstance(ack, dict), ack
    assert set(ack) == {"status", "message_id", "timestamp"}, ack
    assert ack["status"] == "ok"
    uuid.UUID(ack["message_id"])
    assert is_iso8601_with_zone(ack["timestamp"])


class ChatClient(Events):
    """A bare python-socketio client whose events, and any acknowledgement it is told of
    (:meth:`record`), are kept in arrival order."""

    def __init__(self, sio: socketio.AsyncClient) -> None:
        super().__init__()
        self.sio = sio
        sio.on("*", self._record)

    def _record(self, event: str, *args: Any) -> None:
        # Synchronous on purpose: recording order is the order packets arrived in.
        self.record(event, args[0] if len(args) == 1 else args)

    @property
    def authenticated(self) -> dict[str, Any]:
        """This connection's ``authenticated`` payload."""
        (payload,) = self.named("authenticated")
        assert isinstance(payload, dict)
        return payload

    @property
    def connection_id(self) -> str:
        """This connection's id, from its ``authenticated`` event (our extension)."""
        return str(self.authenticated["connection_id"])

    async def call(self, event: str, data: Any = None, timeout: float = TIMEOUT) -> Any:
        """Emit ``event`` and return the server's acknowledgement."""
        return await asyncio.wait_for(self.sio.call(event, data, timeout=timeout), timeout + 1)

    async def emit(self, event: str, data: Any = None) -> None:
        """Emit ``event`` without asking for an acknowledgement."""
        await asyncio.wait_for(self.sio.emit(event, data), TIMEOUT)

    async def send(self, content: str) -> Any:
        """Send a chat message and return its acknowledgement."""
        return await self.call("message", {"content": content})

    async def barrier(self) -> list[Event]:
        """Send a marker message and wait for its echo; returns every event recorded before it.

        The server writes each connection's packets in order, so anything it sent this
        connection before handling the marker has arrived once the echo has.
        """
        marker = f"barrier {uuid.uuid4()}"
        ack = await self.send(marker)
        assert_ok_ack(ack)
        echo = await self.wait_for_entry("message", lambda d: d["id"] == ack["message_id"])
        return self.events[:self.entries.index(echo)]


def cookie_headers(token: str | None) -> dict[str, str]:
    """Handshake headers carrying the session cookie, as non-browser clients must send them."""
    return {} if token is None else {"Cookie": f"session_token={token}"}


async def open_client(url: str, token: str | None, *,
                      transports: list[str] | None = None, auth: Any = None) -> ChatClient:
    """Connect a recording client (with the CONNECT ``auth`` payload, if given); raises
    ``socketio.exceptions.ConnectionError`` when refused."""
    sio = socketio.AsyncClient(reconnection=False)
    client = ChatClient(sio)
    try:
        await asyncio.wait_for(
            sio.connect(url, headers=cookie_headers(token),
                        transports=transports or ["websocket"], wait_timeout=TIMEOUT,
                        auth=auth),
            TIMEOUT + 1,
        )
    except BaseException:
        # A refused connect leaves engineio's HTTP session open; the refusal is what counts.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.disconnect(), TIMEOUT)
        raise
    return client


async def close_client(client: ChatClient) -> None:
    """Disconnect ``client`` normally."""
    await asyncio.wait_for(client.sio.disconnect(), TIMEOUT)


@asynccontextmanager
async def connected(url: str, token: str | None, *, transports: list[str] | None = None,
                    auth: Any = None) -> AsyncIterator[ChatClient]:
    """A recording client connected with ``Cookie: session_token=TOKEN`` for the block."""
    client = await open_client(url, token, transports=transports, auth=auth)
    try:
        yield client
    finally:
        await close_client(client)


@asynccontextmanager
async def signed_in(url: str, token: str) -> AsyncIterator[ChatClient]:
    """A connected client that has received its ``authenticated`` event."""
    async with connected(url, token) as client:
        await client.wait_for("authenticated")
        yield client
