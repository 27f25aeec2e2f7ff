"""Hosting bots in the terminal (--config): they run on the user's session, in the same loop."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from pathlib import Path

import pytest

from roomz import ConnectionState
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache

from .helpers import (
    CLOCK,
    CTRL_D,
    TIMEOUT,
    connect_other,
    open_terminal,
    style_of,
    text_of,
    write_config,
)

EMAIL = "alice@example.com"
BOT = rf"HelperBot \({EMAIL}\)"

LIFECYCLE = '''\
"""Records its bot's startup and shutdown in EVENTS."""
from roomz_bots import hookimpl

EVENTS = []


@hookimpl
def startup(bot):
    EVENTS.append("startup")


@hookimpl
def shutdown(bot):
    EVENTS.append("shutdown")
'''

PACKAGE_INIT = '''\
"""A plugin of two modules: the words live in a submodule."""
from roomz_bots import command, hookimpl

from . import words


@command
def hello() -> str:
    """Say the greeting."""
    return words.GREETING


@hookimpl
async def on_message(bot, message):
    if message.text == "ping?":
        await bot.send(words.PONG)
'''


def write_words(package: Path, version: str) -> None:
    """(Re)write the package's submodule; its mtime moves on so no stale bytecode is used."""
    words = package / "words.py"
    before = words.stat().st_mtime if words.exists() else time.time()
    words.write_text(f'GREETING = "Hello from {version}"\nPONG = "pong {version}"\n',
                     encoding="utf-8")
    os.utime(words, (before + 10, before + 10))  # as if edited seconds later


async def test_bots_start_on_sign_in_and_answer_in_the_terminal(server: LocalServer,
                                                                tmp_path: Path) -> None:
    """After /token the config's bot starts on the user's session; !roll 2d6 is answered."""
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        line = await term.wait_for("Bot helper running")
        assert text_of(line).endswith("Bot helper running: help, dice, echo")
        assert style_of(line, "Bot helper") == "class:good"
        assert "1 bot(s) running" in term.toolbar()
        bot = term.app.bots["helper"]
        assert bot.client.user is not None and bot.client.user["email"] == EMAIL
        start = term.mark()
        mine = await term.command("!roll 2d6", "!roll 2d6$")
        assert style_of(mine, EMAIL) == "class:own"
        answer = await term.wait_for("🎲 2d6:", start=start)
        assert re.fullmatch(rf"{CLOCK} {BOT}: 🎲 2d6: \d+ \+ \d+ = \d+", text_of(answer))
        assert style_of(answer, "HelperBot") == "class:bot"
        assert await term.exit_status("/quit\r") == 0


async def test_bots_start_when_the_cached_session_is_resumed(server: LocalServer,
                                                             tmp_path: Path) -> None:
    """With a cached session the bots start on their own, with no command typed."""
    SessionCache(tmp_path / "session.json").save(server.url, await server.sign_in(EMAIL))
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.wait_for("Connected to")
        await term.wait_for("Bot helper running")
        line = await term.command("!echo over here", f"{BOT}: over here")
        assert style_of(line, "HelperBot") == "class:bot"


async def test_messages_of_other_connections_reach_the_bots(server: LocalServer,
                                                            tmp_path: Path) -> None:
    """Another device of the user asks; the hosted bot answers and the terminal shows both."""
    config = write_config(tmp_path, server.url)
    other = await connect_other(server, EMAIL)
    try:
        async with open_terminal(server.url, tmp_path, config=config) as term:
            await term.sign_in(server, EMAIL)
            await term.wait_for("Bot helper running")
            start = term.mark()
            await asyncio.wait_for(other.send("!echo from afar"), TIMEOUT)
            asked = await term.wait_for("!echo from afar", start=start)
            assert style_of(asked, EMAIL) == "class:name"
            await term.wait_for(f"{BOT}: from afar$", start=start)
    finally:
        await other.disconnect()


async def test_bots_and_plugins_are_listed(server: LocalServer, tmp_path: Path) -> None:
    """/bots: each bot's name, state and plugins; /plugins: each plugin and its commands."""
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.wait_for("Not signed in")
        line = await term.command("/bots", "helper:")
        assert text_of(line).endswith("helper: stopped; plugins: dice, echo")
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        line = await term.command("/bots", "helper:")
        assert text_of(line).endswith("helper: running; plugins: dice, echo")
        start = term.mark()
        term.type("/plugins\r")
        for expected in ("dice: !roll", "echo: !echo", "help: !help"):
            await term.wait_for(f"{re.escape(expected)}$", start=start)


async def test_bot_stop_and_start(server: LocalServer, tmp_path: Path) -> None:
    """/bot stop disconnects the bot (toolbar 0 bots), /bot start brings it back and it answers."""
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        bot = term.app.bots["helper"]
        start = term.mark()
        await term.command("/bot stop helper", "Bot helper stopped")
        await term.wait_for("left", start=start)
        assert bot.client.connection_state is ConnectionState.DISCONNECTED
        assert "0 bot(s) running" in term.toolbar()
        line = await term.command("/bots", "helper:")
        assert "helper: stopped" in text_of(line)
        line = await term.command("/bot stop helper", "not running")
        assert style_of(line, "not running") == "class:warning"
        await term.command("/bot start helper", "Bot helper running")
        assert "1 bot(s) running" in term.toolbar()
        await term.command("/bot start helper", "already running")
        await term.command("!echo back again", f"{BOT}: back again$")
        line = await term.command("/bot start nobody", "nobody")
        assert style_of(line, "No bot named") == "class:warning"


async def test_logout_stops_the_bots_and_signing_in_again_restarts_them(
        server: LocalServer, tmp_path: Path) -> None:
    """/logout stops the hosted bots with the user's connection; /token starts them again."""
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        bot = term.app.bots["helper"]
        await term.command("/logout", "Logged out")
        assert bot.client.connection_state is ConnectionState.DISCONNECTED
        assert "0 bot(s) running" in term.toolbar()
        line = await term.command("/bots", "helper:")
        assert "helper: stopped" in text_of(line)
        start = term.mark()
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running", start=start)
        await term.command("!echo welcome back", f"{BOT}: welcome back$")


@pytest.mark.parametrize("keys", ["/quit\r", CTRL_D], ids=["quit", "ctrl-d"])
async def test_leaving_shuts_the_bots_down(server: LocalServer, tmp_path: Path,
                                           keys: str) -> None:
    """/quit or Ctrl-D: every bot's shutdown hook runs, every connection closes, exit 0."""
    (tmp_path / "lifecycle.py").write_text(LIFECYCLE, encoding="utf-8")
    config = write_config(tmp_path, server.url, plugins='["echo", "./lifecycle.py"]')
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        bot = term.app.bots["helper"]
        lifecycle = next(p for p in bot.plugins if p.name == "lifecycle").module
        assert lifecycle.EVENTS == ["startup"]
        assert await term.exit_status(keys) == 0
        assert lifecycle.EVENTS == ["startup", "shutdown"]
        assert bot.client.connection_state is ConnectionState.DISCONNECTED
        assert term.app.client.connection_state is ConnectionState.DISCONNECTED
        assert term.app.bots == {}


async def test_reload_a_package_plugin_without_restarting_the_bot(server: LocalServer,
                                                                  tmp_path: Path) -> None:
    """/reload re-imports a two-module plugin: new command text and new hooks, same bot."""
    name = f"greet_{uuid.uuid4().hex[:8]}"  # module names are process-wide: one per test
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(PACKAGE_INIT, encoding="utf-8")
    write_words(package, "v1")
    plugin = f"./{name}"
    config = write_config(tmp_path, server.url, plugins=f'["echo", "{plugin}"]')
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        await term.command("!hello", f"{BOT}: Hello from v1$")
        await term.command("ping?", f"{BOT}: pong v1$")
        bot = term.app.bots["helper"]
        connection = bot.connection_id

        write_words(package, "v2")
        start = term.mark()
        line = await term.command(f"/reload {plugin}", "Reloaded")
        assert text_of(line).endswith(f"Reloaded {plugin} in helper")
        await term.command("!hello", f"{BOT}: Hello from v2$")
        await term.command("ping?", f"{BOT}: pong v2$")
        await term.command("!echo done", f"{BOT}: done$")
        assert term.find("pong v1", start) is None  # the old hook is gone
        assert term.app.bots["helper"] is bot and bot.connection_id == connection
        assert term.find("joined|left|Bot helper running", start) is None
        assert "1 bot(s) running" in term.toolbar()


async def test_reload_that_fails_keeps_the_old_code_running(server: LocalServer,
                                                            tmp_path: Path) -> None:
    """/reload of code that does not import: the error is shown, the old version still answers."""
    name = f"greet_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(PACKAGE_INIT, encoding="utf-8")
    write_words(package, "v1")
    plugin = f"./{name}"
    config = write_config(tmp_path, server.url, plugins=f'["echo", "{plugin}"]')
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        await term.command("!hello", f"{BOT}: Hello from v1$")
        words = package / "words.py"
        later = words.stat().st_mtime + 10
        words.write_text('GREETING = "Hello from v2"\nraise RuntimeError("broken on purpose")\n',
                         encoding="utf-8")
        os.utime(words, (later, later))
        line = await term.command(f"/reload {plugin}", "Reload failed")
        assert "keeping the running version" in text_of(line)
        assert "broken on purpose" in text_of(line)
        assert style_of(line, "Reload failed") == "class:error"
        await term.command("!hello", f"{BOT}: Hello from v1$")
        await term.command("ping?", f"{BOT}: pong v1$")


async def test_reload_a_dotted_module_plugin(server: LocalServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin found on sys.path by module name (a package) is reloaded by that name."""
    name = f"greet_{uuid.uuid4().hex[:8]}"
    package = tmp_path / "site" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PACKAGE_INIT, encoding="utf-8")
    write_words(package, "v1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    config = write_config(tmp_path, server.url, plugins=f'["echo", "{name}"]')
    try:
        async with open_terminal(server.url, tmp_path, config=config) as term:
            await term.sign_in(server, EMAIL)
            await term.wait_for("Bot helper running")
            await term.command("!hello", f"{BOT}: Hello from v1$")
            write_words(package, "v2")
            await term.command(f"/reload {name}", f"Reloaded {name} in helper")
            await term.command("!hello", f"{BOT}: Hello from v2$")
            await term.command("ping?", f"{BOT}: pong v2$")
    finally:
        for module in [m for m in sys.modules if m.split(".")[0] == name]:
            monkeypatch.delitem(sys.modules, module, raising=False)


async def test_reload_of_a_plugin_no_bot_uses_is_a_warning(server: LocalServer,
                                                           tmp_path: Path) -> None:
    """/reload NAME for a plugin no running bot has: a warning pointing to /plugins."""
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        line = await term.command("/reload greeter", "No running bot uses plugin")
        assert "/plugins" in text_of(line)
        assert style_of(line, "No running bot") == "class:warning"
