"""The public surface of ``roomz`` exactly as API.md documents it: names, signatures, types,
and what registering handlers does."""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import roomz
from roomz import (
    AsyncClient,
    AuthenticationError,
    ClientError,
    ConnectionError,
    ConnectionState,
    SyncClient,
)
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from tests.events import Events
from tests.waiting import wait_until

P = inspect.Parameter
#: Keywords send() takes besides API.md's content (issue 17: rich messages, additions).
#: send()'s keyword additions to API.md's send(content): rich fields, and the send-once key.
RICH_SEND_OPTIONS = [(name, P.KEYWORD_ONLY, None, "str | None")
                     for name in ("content_type", "subject", "language", "key")]
TIMEOUT = 5.0
ALICE = "alice@example.com"
CLIENT_OPTIONS = [
    ("reconnect", P.KEYWORD_ONLY, True, "bool"),
    ("reconnect_delay", P.KEYWORD_ONLY, 1.0, "float"),
    # API.md's int, and None (addition): never stop trying.
    ("max_reconnect_attempts", P.KEYWORD_ONLY, 5, "int | None"),
    ("connection_timeout", P.KEYWORD_ONLY, 10.0, "float"),
]
CACHE_OPTION = ("session_cache_file", P.KEYWORD_ONLY, None, "str | Path | None")
#: Keyword-only additions, after the documented parameters so that they change nothing.
ADDED_OPTIONS = [("reconnect_delay_max", P.KEYWORD_ONLY, 30.0, "float"),
                 # what who lists (issue 17)
                 ("kind", P.KEYWORD_ONLY, "script", "str"),
                 ("name", P.KEYWORD_ONLY, None, "str | None")]


def params(func: Any) -> list[tuple[str, Any, Any, str]]:
    """``(name, kind, default, annotation)`` of each parameter of ``func``, without ``self``."""
    return [(p.name, p.kind, p.default, str(p.annotation).replace("typing.", ""))
            for p in inspect.signature(func).parameters.values() if p.name != "self"]


def test_documented_imports_work() -> None:
    """The three import lines of API.md give the documented classes."""
    namespace: dict[str, Any] = {}
    exec(  # noqa: S102 - the documented lines, verbatim
        "from roomz import AsyncClient, SyncClient\n"
        "from roomz import ClientError, ConnectionError, AuthenticationError\n"
        "from roomz import ConnectionState\n",
        namespace,
    )
    assert namespace["AsyncClient"] is AsyncClient and inspect.isclass(AsyncClient)
    assert namespace["SyncClient"] is SyncClient and inspect.isclass(SyncClient)
    assert namespace["ClientError"] is ClientError
    assert namespace["ConnectionError"] is ConnectionError
    assert namespace["AuthenticationError"] is AuthenticationError
    assert namespace["ConnectionState"] is ConnectionState
    assert set(roomz.__all__) >= {"AsyncClient", "SyncClient", "ClientError", "ConnectionError",
                                  "AuthenticationError", "ConnectionState"}


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name roomz does not export raises AttributeError, as for any module."""
    with pytest.raises(AttributeError):
        getattr(roomz, "NoSuchThing")  # noqa: B009


def test_import_roomz_stays_light() -> None:
    """A fresh ``import roomz`` loads neither prompt_toolkit, pluggy nor roomz.server."""
    code = (
        "import json, sys\n"
        "import roomz\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "    ('prompt_toolkit', 'pluggy') or m.startswith('roomz.server'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert json.loads(done.stdout) == []


def test_import_clients_stays_light() -> None:
    """``from roomz import AsyncClient, SyncClient`` does not load them either."""
    code = (
        "import json, sys\n"
        "from roomz import AsyncClient, SyncClient\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "    ('prompt_toolkit', 'pluggy') or m.startswith('roomz.server'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert json.loads(done.stdout) == []


def test_exception_hierarchy() -> None:
    """ClientError is the base of ConnectionError and AuthenticationError, as documented."""
    assert ClientError.__bases__ == (Exception,)
    assert ConnectionError.__bases__ == (ClientError,)
    assert AuthenticationError.__bases__ == (ClientError,)
    assert not issubclass(AuthenticationError, ConnectionError)
    assert not issubclass(ConnectionError, AuthenticationError)
    assert ConnectionError.__name__ == "ConnectionError"
    assert ClientError.__doc__ is not None
    assert ClientError.__doc__.splitlines()[0] == "Base exception for client errors."
    assert ConnectionError.__doc__ == "Connection-related errors."
    assert AuthenticationError.__doc__ == "Authentication-related errors."


def test_exceptions_can_be_raised_and_caught_as_client_error() -> None:
    """Each exception carries its message and is caught by ``except ClientError``."""
    for cls in (ClientError, ConnectionError, AuthenticationError):
        with pytest.raises(ClientError, match="went wrong"):
            raise cls("it went wrong")


def test_connection_state_values() -> None:
    """ConnectionState is an Enum with exactly the four documented members and values."""
    assert issubclass(ConnectionState, enum.Enum)
    assert [(m.name, m.value) for m in ConnectionState] == [
        ("DISCONNECTED", "disconnected"),
        ("CONNECTING", "connecting"),
        ("CONNECTED", "connected"),
        ("RECONNECTING", "reconnecting"),
    ]
    assert ConnectionState("reconnecting") is ConnectionState.RECONNECTING


def test_async_client_constructor_signature() -> None:
    """AsyncClient's parameters, kinds, defaults and types are those of API.md."""
    assert params(AsyncClient) == [
        ("server_url", P.POSITIONAL_OR_KEYWORD, P.empty, "str"),
        ("session_token", P.POSITIONAL_OR_KEYWORD, "", "str"),
        *CLIENT_OPTIONS,
        CACHE_OPTION,
        *ADDED_OPTIONS,
    ]


def test_sync_client_constructor_signature() -> None:
    """SyncClient's parameters match API.md (a default for session_token is a compatible extra),
    with AsyncClient's session_cache_file and reconnect_delay_max added (issue 12)."""
    got = params(SyncClient)
    assert [(n, k) for n, k, _, _ in got[:2]] == [("server_url", P.POSITIONAL_OR_KEYWORD),
                                                  ("session_token", P.POSITIONAL_OR_KEYWORD)]
    assert got[0][2] is P.empty and got[0][3] == "str"
    assert got[1][2] in (P.empty, "") and got[1][3] == "str"
    assert got[2:] == [*CLIENT_OPTIONS, CACHE_OPTION, *ADDED_OPTIONS]


def test_constructor_accepts_documented_arguments() -> None:
    """Every documented keyword is accepted and a client starts disconnected, with no user."""
    client = AsyncClient("http://localhost:8000", "token", reconnect=False, reconnect_delay=0.5,
                         max_reconnect_attempts=2, connection_timeout=3.0,
                         session_cache_file=None)
    assert client.connected is False
    assert client.user is None
    assert client.connection_state is ConnectionState.DISCONNECTED


@pytest.mark.parametrize("options", [
    {"reconnect_delay": 0}, {"reconnect_delay_max": 0}, {"connection_timeout": -1.0},
    {"max_reconnect_attempts": -1},
])
def test_constructor_refuses_values_that_cannot_work(options: dict[str, Any]) -> None:
    """A delay, cap or timeout that is not positive, or a negative number of attempts:
    ValueError naming the options (addition)."""
    with pytest.raises(ValueError, match="reconnect_delay_max and connection_timeout"):
        AsyncClient("http://localhost:8000", **options)


def test_reconnection_additions() -> None:
    """max_reconnect_attempts=None (never stop) and a first delay above the cap are accepted;
    the properties of the reconnection start at 0 and None, and reconnect_now() is harmless."""
    client = AsyncClient("http://localhost:8000", reconnect_delay=60.0,
                         max_reconnect_attempts=None)
    assert (client.reconnect_delay, client.reconnect_delay_max) == (60.0, 30.0)
    assert client.max_reconnect_attempts is None
    for name in ("reconnect_attempt", "next_reconnect_in"):
        assert isinstance(inspect.getattr_static(AsyncClient, name), property), name
        assert isinstance(inspect.getattr_static(SyncClient, name), property), name
    assert (client.reconnect_attempt, client.next_reconnect_in) == (0, None)
    assert params(AsyncClient.reconnect_now) == []
    assert not inspect.iscoroutinefunction(AsyncClient.reconnect_now)
    client.reconnect_now()
    assert client.connection_state is ConnectionState.DISCONNECTED


def test_async_client_methods_and_properties() -> None:
    """AsyncClient's methods: coroutines or plain functions as documented, with their parameters."""
    for name in ("connected", "user", "connection_state"):
        assert isinstance(inspect.getattr_static(AsyncClient, name), property), name
    assert params(AsyncClient.on) == [("event", P.POSITIONAL_OR_KEYWORD, P.empty, "str"),
                                      ("handler", P.POSITIONAL_OR_KEYWORD, P.empty,
                                       "EventHandler")]
    assert params(AsyncClient.off) == [("event", P.POSITIONAL_OR_KEYWORD, P.empty, "str"),
                                       ("handler", P.POSITIONAL_OR_KEYWORD, None,
                                        "EventHandler | None")]
    assert params(AsyncClient.login) == [("email", P.POSITIONAL_OR_KEYWORD, P.empty, "str")]
    assert params(AsyncClient.connect)[0] == ("session_token", P.POSITIONAL_OR_KEYWORD, None,
                                              "str | None")
    assert params(AsyncClient.connect)[1:] == [("token", P.KEYWORD_ONLY, None, "str | None"),
                                               ("retry", P.KEYWORD_ONLY, False, "bool")]
    assert all(p[2] is not P.empty for p in params(AsyncClient.connect))  # connect() works bare
    assert params(AsyncClient.disconnect) == []
    assert params(AsyncClient.send) == [("content", P.POSITIONAL_OR_KEYWORD, P.empty, "str"),
                                        *RICH_SEND_OPTIONS]
    assert params(AsyncClient.clear_cached_session) == []
    assert params(AsyncClient.set_display_name) == [
        ("name", P.POSITIONAL_OR_KEYWORD, P.empty, "str | None")]
    for name in ("login", "connect", "disconnect", "send", "set_display_name"):
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
    for name in ("on", "off", "clear_cached_session"):
        assert not inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
    returns = {name: inspect.signature(getattr(AsyncClient, name)).return_annotation
               for name in ("login", "connect", "disconnect", "send", "set_display_name",
                            "on", "off", "clear_cached_session")}
    assert returns["send"].startswith("dict") and returns["set_display_name"].startswith("dict")
    assert {k: v for k, v in returns.items() if not v.startswith("dict")} == {
        "login": "bool", "connect": "None", "disconnect": "None", "on": "None", "off": "None",
        "clear_cached_session": "None"}
    assert hasattr(AsyncClient, "__aenter__") and hasattr(AsyncClient, "__aexit__")


def test_sync_client_methods_and_properties() -> None:
    """SyncClient has every method in synchronous form and the same properties."""
    for name in ("connected", "user", "connection_state"):
        assert isinstance(inspect.getattr_static(SyncClient, name), property), name
    for name in ("connect", "disconnect", "send", "login", "set_display_name",
                 "clear_cached_session", "on", "off", "close"):
        method = getattr(SyncClient, name)
        assert callable(method) and not inspect.iscoroutinefunction(method), name
    assert params(SyncClient.send) == [("content", P.POSITIONAL_OR_KEYWORD, P.empty, "str"),
                                       *RICH_SEND_OPTIONS]
    assert params(SyncClient.off)[1][2] is None
    assert all(p[2] is not P.empty for p in params(SyncClient.connect))
    assert hasattr(SyncClient, "__enter__") and hasattr(SyncClient, "__exit__")


class Occasions:
    """Makes each documented event reach ``client`` once per call, on a real server.

    The client signs in with a session kept in its cache file, so that ending that session
    (``error``) and signing in again is one call too.
    """

    def __init__(self, server: LocalServer, cache: Path) -> None:
        self.server = server
        self.cache = cache
        self.client = AsyncClient(server.url, session_cache_file=cache, reconnect=False,
                                  connection_timeout=TIMEOUT)
        self.other: AsyncClient | None = None
        self._renames = 0

    async def sign_in(self) -> None:
        """Connect ``client`` with a new session of Alice's."""
        self.token = await self.server.sign_in(ALICE)
        SessionCache(self.cache).save(self.server.url, self.token)
        await asyncio.wait_for(self.client.connect(), TIMEOUT)

    async def authenticated(self) -> None:
        await asyncio.wait_for(self.client.disconnect(), TIMEOUT)
        await asyncio.wait_for(self.client.connect(), TIMEOUT)

    disconnect = authenticated

    async def message(self) -> None:
        await asyncio.wait_for(self.client.send("hello"), TIMEOUT)

    async def user_joined(self) -> None:
        visitor = AsyncClient(self.server.url, connection_timeout=TIMEOUT)
        await asyncio.wait_for(visitor.connect((await self.server.request_link(ALICE)).token),
                               TIMEOUT)
        await asyncio.wait_for(visitor.disconnect(), TIMEOUT)

    user_left = user_joined

    async def display_name_changed(self) -> None:
        if self.other is None:
            self.other = AsyncClient(self.server.url, connection_timeout=TIMEOUT)
            link = await self.server.request_link(ALICE)
            await asyncio.wait_for(self.other.connect(link.token), TIMEOUT)
        self._renames += 1
        await asyncio.wait_for(self.other.set_display_name(f"Name {self._renames}"), TIMEOUT)

    async def error(self) -> None:
        # Logging the session out ends its connection with an error 401; then sign in again.
        async with aiohttp.ClientSession() as http, http.post(
                f"{self.server.url}/auth/logout",
                headers={"Cookie": f"session_token={self.token}"}) as resp:
            assert resp.status == 200
        await wait_until(lambda: self.client.connection_state is ConnectionState.DISCONNECTED,
                         TIMEOUT, "the logged-out connection to close")
        await self.sign_in()

    async def close(self) -> None:
        for client in (self.client, self.other):
            if client is not None:
                await asyncio.wait_for(client.disconnect(), TIMEOUT)


@pytest.mark.parametrize("event", ["authenticated", "message", "user_joined", "user_left",
                                   "display_name_changed", "disconnect", "error"])
async def test_on_and_off_work_for_every_documented_event(
        server: LocalServer, tmp_path: Path, event: str) -> None:
    """Handlers registered with on() are each called with the event; after off(event, handler)
    that one is not; after off(event) none is, and a handler registered later is."""
    occasions = Occasions(server, tmp_path / "session.json")
    happen = getattr(occasions, event)
    first, second, later = Events(), Events(), Events()
    first_handler = first.recorder(event)
    try:
        await occasions.sign_in()
        occasions.client.on(event, first_handler)
        occasions.client.on(event, second.recorder(event))
        await happen()
        data = await first.wait_for(event)
        assert isinstance(data, dict) and await second.wait_for(event) == data

        occasions.client.off(event, first_handler)
        await happen()
        await second.wait_for(event, start=1)  # handlers run in order: first's turn is past
        assert first.count(event) == 1

        occasions.client.off(event)
        occasions.client.on(event, later.recorder(event))
        await happen()
        await later.wait_for(event)  # registered last: the others' turn is past
        assert (first.count(event), second.count(event)) == (1, 2)
    finally:
        await occasions.close()


def test_on_unknown_event_is_a_value_error() -> None:
    """A misspelled event name fails at registration with ValueError, not silently."""
    client = AsyncClient("http://localhost:8000")
    with pytest.raises(ValueError, match="mesage"):
        client.on("mesage", lambda data: None)
    sync = SyncClient("http://localhost:8000", "")
    try:
        with pytest.raises(ValueError):
            sync.on("connected", lambda data: None)
    finally:
        sync.close()
