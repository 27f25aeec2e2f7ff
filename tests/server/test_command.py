"""``roomz-server`` as operators run it: a real subprocess, its flags, env, log and signals."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import stat
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from .helpers import link_sent
from .proc import SESSION_COOKIE, ServerProcess, run_command

LONG_SECRET = "s" * 40
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)

#: Every option the issue asks for, as ``--help`` must show it.
OPTIONS = [
    "--host", "--port", "--allowed-emails", "--jwt-expiry-days", "--magic-link-expiry-minutes",
    "--magic-link-rate-limit", "--email-sender", "--smtp-host", "--smtp-port",
    "--smtp-starttls", "--no-smtp-starttls", "--smtp-user", "--smtp-password", "--smtp-sender",
    "--max-connections", "--public-url", "--state-dir", "--log-level",
]
ENV_VARS = ["JWT_SECRET_KEY", "ALLOWED_EMAILS", "JWT_EXPIRY_DAYS", "MAGIC_LINK_EXPIRY_MINUTES",
            "MAGIC_LINK_RATE_LIMIT", "EMAIL_SENDER"]


@dataclass
class LiveClient:
    """A bare python-socketio client connected with a session cookie, recording what it sees."""

    sio: socketio.AsyncClient
    authenticated: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    welcome: dict[str, Any] = field(default_factory=dict)
    disconnect_reasons: list[str] = field(default_factory=list)


@asynccontextmanager
async def live_client(url: str, token: str, timeout: float = 5.0) -> AsyncIterator[LiveClient]:
    """Connect to ``url`` with ``session_token=token`` and wait for ``authenticated``."""
    client = LiveClient(socketio.AsyncClient(reconnection=False))

    async def on_authenticated(data: dict[str, Any]) -> None:
        client.welcome.update(data)
        client.authenticated.set()

    async def on_disconnect(reason: str) -> None:
        client.disconnect_reasons.append(reason)
        client.disconnected.set()

    client.sio.on("authenticated", on_authenticated)
    client.sio.on("disconnect", on_disconnect)
    try:
        await client.sio.connect(url, headers={"Cookie": f"{SESSION_COOKIE}={token}"},
                                 wait_timeout=timeout)
        await asyncio.wait_for(client.authenticated.wait(), timeout)
        yield client
    finally:  # even when refused: that leaves engineio's HTTP session open
        await asyncio.wait_for(client.sio.disconnect(), timeout)


@contextmanager
def occupied_loopback_port() -> Iterator[int]:
    """A port that a socket listens on at 127.0.0.1, so binding it anywhere fails."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def help_blocks(text: str) -> dict[str, str]:
    """Map each option string in ``--help`` output to the help text printed for it."""
    blocks: dict[str, str] = {}
    current: list[str] = []
    words: list[str] = []

    def flush() -> None:
        for option in current:
            blocks[option] = " ".join(words)

    for line in text.splitlines():
        if re.match(r"^  -", line):
            flush()
            invocation, _, help_text = line.strip().partition("  ")
            current = re.findall(r"--?[\w-]+", invocation)
            words = help_text.split()
        elif current and line.startswith("    ") and line.strip():
            words += line.split()
        else:
            flush()
            current, words = [], []
    flush()
    return blocks


def assert_one_line_refusal(result: Any) -> str:
    """Exit code 2, nothing on stdout, exactly one line on stderr and no traceback."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("roomz-server: ")
    return str(lines[0])


async def get_json(url: str, token: str | None = None) -> tuple[int, Any]:
    """GET ``url`` (with the session cookie, if given) and return the status and JSON body."""
    headers = {"Cookie": f"{SESSION_COOKIE}={token}"} if token else {}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(
        url, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def request_link(url: str, email: str) -> tuple[int, Any]:
    """POST a magic link request and return the status and JSON body."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.post(
        f"{url}/auth/request-magic-link", json={"email": email}
    ) as resp:
        return resp.status, await resp.json()


async def cookie_max_age(link_url: str) -> int:
    """The ``Max-Age`` of the session cookie that redeeming ``link_url`` sets."""
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http, http.get(
        link_url, allow_redirects=False
    ) as resp:
        assert resp.status == 302
        return int(resp.cookies[SESSION_COOKIE]["max-age"])


def test_help_explains_every_option(tmp_path: Path) -> None:
    """``roomz-server --help`` lists every flag with help text, and the environment variables."""
    result = run_command("--help", state_home=tmp_path)

    assert result.returncode == 0, result.stderr
    blocks = help_blocks(result.stdout)
    for option in OPTIONS:
        assert option in blocks, f"{option} missing from --help:\n{result.stdout}"
        assert len(blocks[option].split()) >= 2, f"{option} has no help text: {blocks[option]!r}"
    assert "127.0.0.1" in blocks["--host"]
    assert "8000" in blocks["--port"]
    for var in ENV_VARS:
        assert var in result.stdout, f"{var} not explained in --help"
    assert "flags win" in result.stdout


async def test_defaults_are_127_0_0_1_port_8000(tmp_path: Path) -> None:
    """Without --host and --port the server listens on http://127.0.0.1:8000 (or says it can't)."""
    env = {"JWT_SECRET_KEY": LONG_SECRET, "ALLOWED_EMAILS": "alice@example.com"}
    proc = ServerProcess(state_home=tmp_path, env=env, pick_port=False)
    try:
        await proc.start()
    except AssertionError:
        # Port 8000 is taken on this machine: the one-line refusal must name the default address.
        assert await proc.wait() == 2
        assert len(proc.lines) == 1 and "cannot listen" in proc.lines[0], proc.stderr
        assert "127.0.0.1" in proc.lines[0] and "8000" in proc.lines[0], proc.stderr
    else:
        assert proc.url == "http://127.0.0.1:8000"
        assert await proc.stop() == 0
    finally:
        await proc.kill()


async def test_healthz_answers_ok(tmp_path: Path) -> None:
    """GET /healthz on the command's server answers {"status": "ok"}."""
    async with ServerProcess(state_home=tmp_path) as proc:
        assert await get_json(f"{proc.url}/healthz") == (200, {"status": "ok"})
        assert proc.url == f"http://127.0.0.1:{proc.port}"


@pytest.mark.parametrize(("env", "words"), [
    ({}, ["0.0.0.0", "ALLOWED_EMAILS"]),
    ({"JWT_SECRET_KEY": LONG_SECRET}, ["0.0.0.0", "ALLOWED_EMAILS"]),
    ({"JWT_SECRET_KEY": "s" * 31, "ALLOWED_EMAILS": "alice@example.com"},
     ["0.0.0.0", "JWT_SECRET_KEY", "32"]),
], ids=["zero-config", "no-allow-list", "short-secret"])
def test_public_address_refused_before_binding(tmp_path: Path, env: dict[str, str],
                                               words: list[str]) -> None:
    """On 0.0.0.0 without an allow-list or with a short secret: exit 2, one line, no port opened."""
    with occupied_loopback_port() as port:
        # Binding 0.0.0.0 on this port would fail with "cannot listen": the refusal comes first.
        result = run_command("--host", "0.0.0.0", "--port", str(port), state_home=tmp_path,
                             env=env)

    line = assert_one_line_refusal(result)
    assert "cannot listen" not in line
    for word in words:
        assert word in line
    assert not (tmp_path / "roomz").exists()  # no secret generated for a server that won't run


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    """A port already in use ends the command with exit 2 and one line, not a traceback."""
    env = {"JWT_SECRET_KEY": LONG_SECRET, "ALLOWED_EMAILS": "alice@example.com"}
    with occupied_loopback_port() as port:
        result = run_command("--port", str(port), state_home=tmp_path, env=env)

    assert "cannot listen" in assert_one_line_refusal(result)


@pytest.mark.parametrize(("var", "value"), [
    ("JWT_EXPIRY_DAYS", "abc"),
    ("MAGIC_LINK_EXPIRY_MINUTES", "soon"),
    ("MAGIC_LINK_RATE_LIMIT", "1.5"),
    ("JWT_EXPIRY_DAYS", "0"),
    ("EMAIL_SENDER", "pigeon"),
])
def test_bad_env_setting_is_one_line(tmp_path: Path, var: str, value: str) -> None:
    """A malformed setting in the environment: exit 2 and one line naming it."""
    result = run_command(state_home=tmp_path, env={var: value})

    line = assert_one_line_refusal(result)
    assert var in line or var.lower() in line
    assert value in line
    assert not (tmp_path / "roomz").exists()  # refused before touching the state dir


def test_a_damaged_questions_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """The open questions cannot be read: exit 2 and one line naming the file, as for any
    state file the server cannot use."""
    questions = tmp_path / "roomz" / "questions.sqlite3"
    questions.parent.mkdir(mode=0o700)
    questions.write_bytes(b"not a database " * 1000)
    env = {"JWT_SECRET_KEY": LONG_SECRET, "ALLOWED_EMAILS": "alice@example.com"}
    result = run_command("--port", "0", state_home=tmp_path, env=env)

    line = assert_one_line_refusal(result)
    assert f"cannot keep open questions in {questions}: file is not a database" in line


async def test_generated_secret_keeps_sessions_across_restarts(tmp_path: Path) -> None:
    """Without JWT_SECRET_KEY a secret is kept (0600) in the state dir; old cookies keep working."""
    async with ServerProcess(state_home=tmp_path) as first:
        token = await first.sign_in("alice@example.com")
        assert any("generated a JWT secret" in line for line in first.lines), first.stderr
        assert await first.stop() == 0

    secret_file = tmp_path / "roomz" / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 32

    async with ServerProcess(state_home=tmp_path) as second:
        assert not any("generated a JWT secret" in line for line in second.lines), second.stderr
        status, body = await get_json(f"{second.url}/auth/me", token)
        assert status == 200, body
        assert body["user"]["email"] == "alice@example.com"
        async with live_client(second.url, token) as client:
            assert client.welcome["user"]["email"] == "alice@example.com"
            assert client.welcome["channel"] == "user:alice@example.com"


async def test_state_dir_flag_holds_the_secret(tmp_path: Path) -> None:
    """--state-dir chooses where the generated secret lives."""
    state_dir = tmp_path / "elsewhere"
    async with ServerProcess("--state-dir", str(state_dir), state_home=tmp_path / "xdg"):
        assert stat.S_IMODE((state_dir / "jwt_secret").stat().st_mode) == 0o600
        assert not (tmp_path / "xdg" / "roomz" / "jwt_secret").exists()


async def test_without_allow_list_anyone_signs_in_and_the_log_says_so(tmp_path: Path) -> None:
    """No ALLOWED_EMAILS on loopback: any email gets a link, and start-up logs a warning."""
    async with ServerProcess(state_home=tmp_path, env={"JWT_SECRET_KEY": LONG_SECRET}) as proc:
        warning = await proc.wait_for_line(r"ALLOWED_EMAILS.*any email")
        assert "WARNING" in warning.string
        for email in ("anyone@example.com", "someone.else@example.org"):
            status, body = await request_link(proc.url, email)
            assert (status, link_sent(body)) == (
                200, {"status": "ok", "message": "Magic link sent. Check your email."})


async def test_env_settings_apply(tmp_path: Path) -> None:
    """ALLOWED_EMAILS, JWT_EXPIRY_DAYS and MAGIC_LINK_RATE_LIMIT from the env take effect."""
    env = {"JWT_SECRET_KEY": LONG_SECRET, "ALLOWED_EMAILS": " Alice@Example.com, bob@example.com",
           "JWT_EXPIRY_DAYS": "2", "MAGIC_LINK_RATE_LIMIT": "1"}
    async with ServerProcess(state_home=tmp_path, env=env) as proc:
        assert not any("any email" in line for line in proc.lines), proc.stderr
        link = await proc.request_link("alice@example.com")
        assert await cookie_max_age(link.url) == 2 * 86400

        status, body = await request_link(proc.url, "carol@example.com")
        assert (status, body["detail"]) == (
            403, "This email is not authorized to access this service.")
        status, body = await request_link(proc.url, "alice@example.com")
        assert status == 429, body


async def test_flags_win_over_env(tmp_path: Path) -> None:
    """Flags override the same settings given in the environment."""
    env = {"JWT_SECRET_KEY": LONG_SECRET, "ALLOWED_EMAILS": "alice@example.com",
           "JWT_EXPIRY_DAYS": "2", "MAGIC_LINK_RATE_LIMIT": "1"}
    flags = ["--allowed-emails", "carol@example.com", "--jwt-expiry-days", "3",
             "--magic-link-rate-limit", "2"]
    async with ServerProcess(*flags, state_home=tmp_path, env=env) as proc:
        status, body = await request_link(proc.url, "alice@example.com")
        assert status == 403, body
        link = await proc.request_link("carol@example.com")
        assert await cookie_max_age(link.url) == 3 * 86400
        await proc.request_link("carol@example.com")
        status, body = await request_link(proc.url, "carol@example.com")
        assert status == 429, body


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_disconnects_clients_and_exits_0(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM or SIGINT: every client sees a disconnect and the command exits 0 within 5 s."""
    async with ServerProcess(state_home=tmp_path) as proc:
        token = await proc.sign_in("alice@example.com")
        async with live_client(proc.url, token) as one, live_client(proc.url, token) as two:
            started = time.monotonic()
            proc.send_signal(sig)
            await asyncio.wait_for(
                asyncio.gather(one.disconnected.wait(), two.disconnected.wait()), 5)
            code = await proc.wait(timeout=5)
            elapsed = time.monotonic() - started

            assert code == 0, proc.stderr
            assert elapsed < 5
            assert len(one.disconnect_reasons) == len(two.disconnect_reasons) == 1
            assert "Traceback" not in proc.stderr


async def test_clients_reconnect_by_themselves_after_a_restart(tmp_path: Path) -> None:
    """A restart (SIGTERM, then start again) closes transports: clients come back by themselves."""
    env = {"JWT_SECRET_KEY": LONG_SECRET}
    async with ServerProcess(state_home=tmp_path, env=env) as proc:
        token = await proc.sign_in("alice@example.com")
        port = proc.port
        client = socketio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.5)
        authenticated = asyncio.Event()
        client.on("authenticated", lambda data: authenticated.set())
        await client.connect(proc.url, headers=lambda: {"Cookie": f"session_token={token}"},
                             wait_timeout=5)
        try:
            await asyncio.wait_for(authenticated.wait(), 5)
            authenticated.clear()
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait(timeout=5) == 0
            async with ServerProcess(state_home=tmp_path, env=env, port=port):
                await asyncio.wait_for(authenticated.wait(), 10)
                ack = await client.call("message", {"content": "back"}, timeout=5)
                assert ack["status"] == "ok"
        finally:
            await asyncio.wait_for(client.shutdown(), 5)


async def test_max_connections_flag_refuses_the_next_connection(tmp_path: Path) -> None:
    """--max-connections 1: a second live connection is refused while the first stays up."""
    async with ServerProcess("--max-connections", "1", state_home=tmp_path) as proc:
        token = await proc.sign_in("alice@example.com")
        async with live_client(proc.url, token) as first:
            refused = socketio.AsyncClient(reconnection=False)
            reasons: list[Any] = []
            refused.on("connect_error", reasons.append)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await refused.connect(proc.url, headers={"Cookie": f"{SESSION_COOKIE}={token}"},
                                      wait_timeout=5)
            await refused.disconnect()  # closes the HTTP session the refused connect opened
            assert "Server full" in str(reasons), reasons
            assert first.sio.connected
            ack = await first.sio.call("message", {"content": "still here"}, timeout=5)
            assert ack["status"] == "ok"
        # The slot is free again once the server has seen the first client leave.
        deadline = time.monotonic() + 5
        while True:
            try:
                async with live_client(proc.url, token) as again:
                    assert again.welcome["user"]["email"] == "alice@example.com"
                    break
            except socketio.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


def test_malformed_port_flag_is_a_usage_error(tmp_path: Path) -> None:
    """A bad --port value is an argparse usage error (exit 2), not a traceback."""
    result = run_command("--port", "eighty", state_home=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--port" in result.stderr

