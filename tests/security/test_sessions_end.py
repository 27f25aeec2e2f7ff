"""Sessions that really end: logging out, an operator ending a user's sessions, expiry.

A stolen cookie must stop working once its owner logs out or the operator ends the
user's sessions: for ``/auth/me``, for new connections, and for connections already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio

from roomz import AsyncClient, AuthenticationError, ConnectionState
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from tests.events import Events
from tests.nodes.redis_proc import RedisProcess
from tests.server.helpers import open_client
from tests.server.proc import ROOMZ_SERVER, ServerProcess, free_port, server_env
from tests.waiting import stays_true, wait_until

ALICE = "alice@example.com"
BOB = "bob@example.com"
TIMEOUT = 5.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=TIMEOUT)
SECRET = "a-shared-secret-of-every-node-0123456789"
LOGGED_OUT = {"error": "session ended: logged out; sign in again", "code": 401}
ENDED_BY_OPERATOR = {
    "error": "session ended: all sessions of this user were ended; sign in again", "code": 401}
#: Live connections are checked this often in these tests (the default is 5 s).
QUICK_CHECKS = {"ROOMZ_SESSION_CHECK_INTERVAL": "0.2"}


async def me(url: str, token: str) -> tuple[int, Any]:
    """``GET /auth/me`` with the session cookie: the status and the JSON body."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(
            f"{url}/auth/me", headers={"Cookie": f"session_token={token}"}) as resp:
        return resp.status, await resp.json()


async def log_out(url: str, token: str) -> int:
    """``POST /auth/logout`` with the session cookie, as a browser would; the status."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.post(
            f"{url}/auth/logout", headers={"Cookie": f"session_token={token}"}) as resp:
        return resp.status


class Live:
    """An ``AsyncClient`` on a session of its own (kept in its cache file), recording events."""

    def __init__(self, url: str, token: str, cache: Path) -> None:
        SessionCache(cache).save(url, token)
        self.url = url
        self.cache = cache
        self.client = AsyncClient(url, session_cache_file=cache, reconnect_delay=0.1,
                                  connection_timeout=TIMEOUT)
        self.events = Events(self.client, ("error", "user_left"))

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every ``error`` event so far."""
        return self.events.named("error")

    async def connect(self) -> Live:
        await asyncio.wait_for(self.client.connect(), TIMEOUT + 1)
        return self

    async def ended(self, error: dict[str, Any], timeout: float = TIMEOUT) -> None:
        """Wait until the server ended this session: the 401 error, disconnected for good."""
        await self.events.wait_for("error", timeout=timeout)
        assert self.errors == [error]
        await wait_until(lambda: self.client.connection_state is ConnectionState.DISCONNECTED,
                         TIMEOUT, lambda: f"disconnected, is {self.client.connection_state}")
        # It does not come back, and the session it had is forgotten.
        assert await stays_true(
            lambda: self.client.connection_state is ConnectionState.DISCONNECTED, 0.5)
        assert SessionCache(self.cache).load(self.url) is None and self.client.user is None

    async def close(self) -> None:
        await asyncio.wait_for(self.client.disconnect(), TIMEOUT)


async def refused(url: str, token: str, tmp_path: Path) -> str:
    """Connect with ``token`` as our client does; the reason the server gave for refusing."""
    cache = tmp_path / "refused.json"
    SessionCache(cache).save(url, token)
    client = AsyncClient(url, session_cache_file=cache, reconnect=False,
                         connection_timeout=TIMEOUT)
    try:
        await asyncio.wait_for(client.connect(), TIMEOUT + 1)
    except AuthenticationError as exc:
        return str(exc)
    await client.disconnect()
    raise AssertionError(f"{url} accepted a connection with an ended session")


# Logging out

async def test_a_logged_out_cookie_is_refused_by_me_and_by_connect(tmp_path: Path) -> None:
    """After ``POST /auth/logout`` the same cookie gets 401 from /auth/me and cannot connect."""
    async with LocalServer() as server:
        token = await server.sign_in(ALICE)
        assert (await me(server.url, token))[0] == 200

        assert await log_out(server.url, token) == 200

        status, body = await me(server.url, token)
        assert status == 401
        assert body["detail"] == "Not signed in: session ended; sign in again."
        assert "session ended; sign in again" in await refused(server.url, token, tmp_path)
        # Signing in again gives a new session that works.
        assert (await me(server.url, await server.sign_in(ALICE)))[0] == 200


async def test_logging_out_ends_that_sessions_live_connections_at_once(tmp_path: Path) -> None:
    """The logged-out session's open connection is told and closed at once (not at the next
    periodic check); the user's other session stays connected and hears that one left."""
    async with LocalServer(session_check_interval=3600) as server:
        stolen = await Live(server.url, await server.sign_in(ALICE), tmp_path / "a.json").connect()
        other = await Live(server.url, await server.sign_in(ALICE), tmp_path / "b.json").connect()
        try:
            assert await log_out(server.url, token_of(stolen)) == 200

            await stolen.ended(LOGGED_OUT)
            left = await other.events.wait_for("user_left", what="user_left on the other session")
            assert left["remaining_connections"] == 1
            assert other.client.connected and other.errors == []
            assert (await other.client.send("still here"))["status"] == "ok"
        finally:
            await stolen.close()
            await other.close()


def token_of(live: Live) -> str:
    """The session token a live client connected with."""
    token = SessionCache(live.cache).load(live.url)
    assert token is not None
    return token


async def test_the_wire_says_session_ended_with_the_reason(server: LocalServer) -> None:
    """A plain Socket.IO client sees the extension event ``session_ended`` {"reason"} and is
    disconnected by the server."""
    token = await server.sign_in(ALICE)
    client = await open_client(server.url, token)
    try:
        await client.wait_for("authenticated")
        assert await log_out(server.url, token) == 200
        assert await client.wait_for("session_ended") == {"reason": "logged out"}
        await wait_until(lambda: not client.sio.connected, TIMEOUT, "the server to disconnect")
    finally:
        await asyncio.wait_for(client.sio.disconnect(), TIMEOUT)


async def test_messages_in_flight_at_logout_are_dropped_quietly(
        server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    """A python-socketio client emits without pause while its user logs out: the events
    that cross the server's DISCONNECT are dropped without a word. The client is ended by
    that DISCONNECT (no TCP reset first), and the log says nothing about bad packets."""
    token = await server.sign_in(ALICE)
    client = await open_client(server.url, token)
    sio = client.sio
    reasons: list[Any] = []
    sio.on("disconnect", lambda *reason: reasons.append(reason))
    await client.wait_for("authenticated")

    async def keep_sending() -> None:
        with contextlib.suppress(socketio.exceptions.BadNamespaceError):
            while not reasons:
                await sio.emit("message", {"content": "still typing"})
                await asyncio.sleep(0)

    sender = asyncio.create_task(keep_sending())
    try:
        assert await log_out(server.url, token) == 200
        await wait_until(lambda: bool(reasons), TIMEOUT, "the client's disconnect")
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await asyncio.wait_for(sio.disconnect(), TIMEOUT)

    assert reasons == [(sio.reason.SERVER_DISCONNECT,)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any("it sent" in line for line in warnings), warnings


async def test_logging_out_without_a_valid_cookie_still_answers_ok(server: LocalServer) -> None:
    """Logging out with no cookie, or a forged one, changes nothing and still answers 200."""
    assert await log_out(server.url, "not-a-token") == 200
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.post(
            f"{server.url}/auth/logout") as resp:
        assert resp.status == 200


# Expiry and the allow-list, for connections already open

async def test_a_live_connection_ends_when_its_session_expires(tmp_path: Path) -> None:
    """A connection does not outlive its session's ``exp``."""
    async with LocalServer(session_check_interval=0.2) as server:
        assert server.settings.jwt_secret is not None
        now = int(time.time())
        token = jwt.encode({"sub": f"user:{ALICE}", "email": ALICE, "iat": now, "exp": now + 2,
                            "channel_token": "expires-soon", "ver": 1},
                           server.settings.jwt_secret, algorithm="HS256")
        live = await Live(server.url, token, tmp_path / "a.json").connect()
        try:
            await live.ended({"error": "session ended: expired; sign in again", "code": 401},
                             timeout=10)
        finally:
            await live.close()


async def test_a_live_connection_ends_when_its_email_leaves_the_allow_list(
        tmp_path: Path) -> None:
    """The operator removes an email from the allow-list: its open connections end."""
    allowed = {ALICE, BOB}  # a live set: the operator edits the list while running
    async with LocalServer(allowed_emails=allowed, session_check_interval=0.2) as server:
        alice = await Live(server.url, await server.sign_in(ALICE), tmp_path / "a.json").connect()
        bob = await Live(server.url, await server.sign_in(BOB), tmp_path / "b.json").connect()
        try:
            allowed.discard(ALICE)
            await alice.ended({"error": "session ended: email no longer allowed; sign in again",
                               "code": 401})
            assert bob.client.connected and bob.errors == []
        finally:
            await alice.close()
            await bob.close()


# The operator's command: roomz-server end-sessions EMAIL

async def end_sessions(*args: str, state_home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``roomz-server end-sessions ARGS`` (without blocking the clients' event loop)."""
    process = await asyncio.create_subprocess_exec(
        ROOMZ_SERVER, "end-sessions", *args, env=server_env(state_home),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def test_end_sessions_ends_every_session_of_a_user_and_survives_a_restart(
        tmp_path: Path) -> None:
    """``roomz-server end-sessions alice@example.com`` against a running server: her sessions
    get 401 at once, her open connections end within the check interval, Bob is untouched,
    and after a restart her old sessions (and a logged-out one) stay ended."""
    state_home, port = tmp_path / "state", free_port()
    server = ServerProcess(state_home=state_home, port=port, env=QUICK_CHECKS)
    async with server:
        first, second = await server.sign_in(ALICE), await server.sign_in(ALICE)
        bobs, bobs_old = await server.sign_in(BOB), await server.sign_in(BOB)
        assert await log_out(server.url, bobs_old) == 200
        alice = await Live(server.url, first, tmp_path / "a.json").connect()
        bob = await Live(server.url, bobs, tmp_path / "b.json").connect()
        try:
            result = await end_sessions(ALICE, state_home=state_home)
            assert (result.returncode, result.stderr) == (0, "")
            assert result.stdout.splitlines() == [
                f"ended every session of {ALICE}: they must sign in again"]

            for token in (first, second):
                assert (await me(server.url, token))[0] == 401
            await alice.ended(ENDED_BY_OPERATOR)
            assert "session revoked" in await refused(server.url, second, tmp_path)
            assert bob.client.connected and bob.errors == []
        finally:
            await alice.close()
            await bob.close()
        assert await server.stop() == 0

    async with ServerProcess(state_home=state_home, port=port) as again:
        assert [(await me(again.url, token))[0] for token in (first, second, bobs_old, bobs)] \
            == [401, 401, 401, 200]


async def test_end_sessions_refuses_a_bad_email_in_one_line(tmp_path: Path) -> None:
    """Not an email: exit 2 and one line saying so."""
    result = await end_sessions("not-an-email", state_home=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "roomz-server end-sessions: 'not-an-email' is not an email address"]


async def test_end_sessions_says_so_when_redis_is_unreachable(tmp_path: Path) -> None:
    """Nothing listens at the Redis URL: exit 2 and one line, no traceback."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = await end_sessions("--redis-url", url, ALICE, state_home=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"roomz-server end-sessions: cannot reach Redis at {url}: ")


async def test_end_sessions_says_so_when_the_state_dir_is_unusable(tmp_path: Path) -> None:
    """A state directory that cannot hold the records: exit 2 and one line naming it."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = await end_sessions("--state-dir", str(blocker), ALICE, state_home=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("roomz-server end-sessions: cannot keep session records in "
                           f"{blocker}/")


# Several nodes on one Redis

async def test_logout_and_end_sessions_reach_every_node(tmp_path: Path) -> None:
    """Logging out on node one ends that session's connection on node two; end-sessions
    with ``--redis-url`` ends a user's sessions and connections on both nodes."""
    async with RedisProcess() as redis:
        env = {"JWT_SECRET_KEY": SECRET, **QUICK_CHECKS}

        def node() -> ServerProcess:
            return ServerProcess("--redis-url", redis.url, state_home=tmp_path, env=env)

        async with node() as one, node() as two:
            logged_out, alices, bobs = (await one.sign_in(ALICE), await one.sign_in(ALICE),
                                        await one.sign_in(BOB))
            on_two = await Live(two.url, logged_out, tmp_path / "a.json").connect()
            alice = [await Live(n.url, alices, tmp_path / f"{i}.json").connect()
                     for i, n in enumerate((one, two))]
            bob = await Live(two.url, bobs, tmp_path / "b.json").connect()
            try:
                assert await log_out(one.url, logged_out) == 200
                await on_two.ended(LOGGED_OUT)
                assert (await me(two.url, logged_out))[0] == 401

                result = await end_sessions("--redis-url", redis.url, ALICE,
                                            state_home=tmp_path)
                assert result.returncode == 0, result.stderr
                for live in alice:
                    await live.ended(ENDED_BY_OPERATOR)
                assert [(await me(n.url, alices))[0] for n in (one, two)] == [401, 401]
                assert bob.client.connected and bob.errors == []
                assert (await me(one.url, bobs))[0] == 200
            finally:
                for live in (on_two, *alice, bob):
                    await live.close()
            for n in (one, two):
                assert await n.stop(signal.SIGTERM) == 0
