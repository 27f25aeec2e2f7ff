"""The bot host: start, stop and reload a config's bots, and each bot's state, with a real
server (a ``roomz-server`` subprocess stopped and started again where outages matter)."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import ConnectionState
from roomz.server.local import LocalServer
from roomz.session_cache import SessionCache
from roomz_bots.config import Config, ConfigError, load_config
from roomz_bots.host import BotHost, BotState, HostedBot, HostError, ReloadFailed, duration
from tests.server.proc import RestartableServer

from .headless import EMAIL, end_sessions, sign_in
from .helpers import SAMPLES, TIMEOUT, wait_until

NOWHERE = "http://127.0.0.1:9"  # the config's URL: the host must use the one it is given
SINCE = r"\d\d:\d\d:\d\d"


def write_config(tmp_path: Path, bots: str, client: str = "") -> Config:
    """A config of ``bots`` ([[bots]] tables) whose own server URL leads nowhere."""
    path = tmp_path / "bots.toml"
    path.write_text(f'[client]\nserver_url = "{NOWHERE}"\n'
                    f'session_cache_file = "{tmp_path / "config-session.json"}"\n{client}\n'
                    f'{bots}')
    return load_config(path)


HELPER = '[[bots]]\nname = "helper"\ndisplay_name = "HelperBot"\nplugins = ["echo"]\n'


class Changes:
    """What ``on_change`` reported: each bot's states in order."""

    def __init__(self) -> None:
        self.states: list[tuple[str, BotState]] = []

    def __call__(self, hosted: HostedBot) -> None:
        self.states.append((hosted.name, hosted.state))

    def of(self, name: str) -> list[str]:
        """The states ``name`` went through, as words."""
        return [state.value for bot, state in self.states if bot == name]


async def state_is(hosted: HostedBot, state: BotState, timeout: float = TIMEOUT) -> None:
    """Wait until ``hosted`` is in ``state``."""
    await wait_until(lambda: hosted.state is state, timeout,
                     lambda: f"{hosted.name} {state.value}; it is {hosted.describe()}")


@pytest.fixture
async def hosts() -> AsyncIterator[list[BotHost]]:
    """Hosts made by a test are stopped at its end."""
    made: list[BotHost] = []
    yield made
    for host in made:
        await asyncio.wait_for(host.stop_all(), TIMEOUT * 3)


async def test_a_bots_states_through_an_outage(
        tmp_path: Path, restartable: RestartableServer, hosts: list[BotHost],
        caplog: pytest.LogCaptureFixture) -> None:
    """starting, running; the server killed: reconnecting since the drop, attempt N growing
    past the client's default of five, next in at most the 1 s cap; the server back:
    running, and one line saying after how long; stopped."""
    caplog.set_level(logging.INFO, "roomz_bots")
    server = await restartable.start()
    session = tmp_path / "session.json"
    await sign_in(restartable, session)
    config = write_config(tmp_path, HELPER, "reconnect_max_delay = 1.0")
    changes = Changes()
    host = BotHost(config, server.url, session_cache_file=session, data_dir=tmp_path / "data",
                   on_change=changes)
    hosts.append(host)
    assert host.describe() == ["helper: stopped; plugins: echo"]

    hosted = await asyncio.wait_for(host.start("helper"), 1.0)  # it does not wait to connect
    assert hosted is host.bots["helper"] and hosted.bot is host.active["helper"]
    await state_is(hosted, BotState.RUNNING)
    assert hosted.describe() == "helper: running; plugins: echo"
    assert hosted.bot is not None and hosted.bot.client.user is not None
    assert hosted.bot.client.user["display_name"] == "HelperBot"

    await server.kill()
    dropped = time.time()
    await state_is(hosted, BotState.RECONNECTING)
    assert abs(hosted.since - dropped) < 1.0
    await wait_until(lambda: hosted.attempt > 5, TIMEOUT * 2, "more than five attempts")
    assert hosted.next_in is None or 0 <= hosted.next_in <= 1.0
    since = time.strftime("%H:%M:%S", time.localtime(hosted.since))
    assert re.fullmatch(rf"helper: reconnecting since {since} \(attempt \d+, "
                        r"(next in [01] s|trying now)\); plugins: echo", hosted.describe())

    await restartable.start()
    await state_is(hosted, BotState.RUNNING, 1.0 + TIMEOUT)
    assert (hosted.attempt, hosted.next_in) == (0, None)
    backs = [r.getMessage() for r in caplog.records if "is back after" in r.getMessage()]
    assert len(backs) == 1 and re.fullmatch(r"bot helper is back after \d+ s", backs[0])

    await host.stop("helper")
    assert hosted.describe() == "helper: stopped; plugins: echo" and host.active == {}
    assert hosted.bot.client.connection_state is ConnectionState.DISCONNECTED
    assert changes.of("helper") == ["starting", "running", "reconnecting", "running", "stopped"]
    said = [r.getMessage() for r in caplog.records if r.name == "roomz_bots"]
    assert [m for m in said if "lost its connection" in m] == [
        f"bot helper lost its connection to {server.url}; reconnecting (waits grow to 1 s)"]
    assert said[-1] == "bot helper stopped"


async def test_a_bot_started_while_the_server_is_down_comes_up_with_it(
        tmp_path: Path, restartable: RestartableServer, hosts: list[BotHost]) -> None:
    """start() returns at once; the bot is reconnecting (attempts counted) until the server
    is up, then running."""
    server = await restartable.start()
    session = tmp_path / "session.json"
    await sign_in(restartable, session)
    await server.kill()
    changes = Changes()
    host = BotHost(write_config(tmp_path, HELPER, "reconnect_max_delay = 0.5"), server.url,
                   session_cache_file=session, data_dir=tmp_path / "data", on_change=changes)
    hosts.append(host)

    hosted = await asyncio.wait_for(host.start("helper"), 1.0)
    await state_is(hosted, BotState.RECONNECTING)
    await wait_until(lambda: hosted.attempt >= 3, TIMEOUT, "three attempts")
    assert re.fullmatch(rf"helper: reconnecting since {SINCE} \(attempt \d+, "
                        r"(next in [01] s|trying now)\); plugins: echo", hosted.describe())
    assert "helper" in host.active

    await restartable.start()
    await state_is(hosted, BotState.RUNNING, 0.5 + TIMEOUT)
    assert changes.of("helper") == ["starting", "reconnecting", "running"]


async def test_a_refused_session_stops_the_bot_and_says_why(
        tmp_path: Path, restartable: RestartableServer, hosts: list[BotHost],
        caplog: pytest.LogCaptureFixture) -> None:
    """The user's sessions ended while the server was down: the reconnect is refused, the
    bot is refused (the server's reason), stopped, not running; one line says so and how to
    sign in again. Signed in again, it starts as before."""
    server = await restartable.start()
    session = tmp_path / "session.json"
    await sign_in(restartable, session)
    config = write_config(tmp_path, HELPER, "reconnect_max_delay = 0.5")
    host = BotHost(config, server.url, session_cache_file=session, data_dir=tmp_path / "data")
    hosts.append(host)
    hosted = await host.start("helper")
    await state_is(hosted, BotState.RUNNING)

    await server.kill()
    await state_is(hosted, BotState.RECONNECTING)
    await end_sessions(EMAIL, restartable)
    await restartable.start()
    await state_is(hosted, BotState.REFUSED, 0.5 + TIMEOUT)
    reason = "the server refused the session: Not authenticated: session revoked"
    assert hosted.reason == reason
    assert hosted.describe() == f"helper: refused ({reason}); plugins: echo"
    assert host.active == {}
    await wait_until(lambda: hosted.bot is not None and hosted.bot.client.connection_state
                     is ConnectionState.DISCONNECTED, what="the bot to disconnect")
    with pytest.raises(HostError, match="^Bot helper is not running.$"):
        await host.stop("helper")
    (line,) = [r for r in caplog.records if "stopped" in r.getMessage()]
    assert line.levelname == "ERROR"
    assert line.getMessage() == (
        f"bot helper stopped: {reason}. Sign in again: roomz-cli -s {server.url} --config "
        f"{config.path}, then /login {EMAIL}")
    assert host.sign_in_advice(hosted) == (f"roomz-cli -s {server.url} --config {config.path}, "
                                           f"then /login {EMAIL}")
    in_terminal = BotHost(config, server.url, session_cache_file=session, in_terminal=True)
    assert in_terminal.sign_in_advice(hosted) == f"/login {EMAIL}"

    await sign_in(restartable, session)
    await host.start("helper")
    await state_is(hosted, BotState.RUNNING)
    assert hosted.reason is None


async def test_the_config_is_never_changed(tmp_path: Path, server: LocalServer,
                                           hosts: list[BotHost]) -> None:
    """The host runs the bots on the URL and session file it is given, not the config's;
    after starting, reloading and stopping, the config is as it was loaded."""
    session = tmp_path / "given-session.json"
    SessionCache(session).save(server.url, await server.sign_in(EMAIL))
    (tmp_path / "farewell.py").write_text((SAMPLES / "farewell.py").read_text())
    config = write_config(tmp_path, HELPER.replace('["echo"]', '["echo", "farewell.py"]'))
    before = copy.deepcopy(config)
    host = BotHost(config, server.url, session_cache_file=session, data_dir=tmp_path / "data")
    hosts.append(host)

    assert await host.start_all() == []
    hosted = host.bots["helper"]
    await state_is(hosted, BotState.RUNNING)
    assert hosted.bot is not None and hosted.bot.client.server_url == server.url
    assert host.reload("farewell") == ["helper"]
    await host.stop_all()
    assert config == before
    assert config.server_url == NOWHERE and not (tmp_path / "config-session.json").exists()


async def test_mistakes_are_one_line_each(tmp_path: Path, server: LocalServer,
                                          hosts: list[BotHost]) -> None:
    """Unknown bots, a bot started twice or stopped when it does not run: HostError; a bot
    whose plugin no route knows: ConfigError, and it stays stopped; start_all returns the
    mistakes and starts the others, or (all_or_none) starts none."""
    session = tmp_path / "session.json"
    SessionCache(session).save(server.url, await server.sign_in(EMAIL))
    config = write_config(tmp_path, HELPER + '[[bots]]\nname = "typo"\nplugins = ["dcie"]\n')
    host = BotHost(config, server.url, session_cache_file=session, data_dir=tmp_path / "data")
    hosts.append(host)

    with pytest.raises(HostError, match=r"^No bot named 'nobody' in .*bots\.toml \(bots: "
                                        r"helper, typo\)\.$"):
        await host.start("nobody")
    with pytest.raises(ConfigError, match=r"\[\[bots\]\] 'typo' plugins: .*'dcie'"):
        await host.start("typo")
    assert host.bots["typo"].state is BotState.STOPPED
    with pytest.raises(HostError, match="^Bot helper is not running.$"):
        await host.stop("helper")

    (error,) = await host.start_all(all_or_none=True)
    assert "dcie" in str(error) and host.active == {}
    (error,) = await host.start_all()
    assert "dcie" in str(error) and list(host.active) == ["helper"]
    with pytest.raises(HostError, match="^Bot helper is already running.$"):
        await host.start("helper")
    assert host.describe() == [f"helper: {host.bots['helper'].state_text()}; plugins: echo",
                               "typo: stopped; plugins: dcie"]


async def running_host(tmp_path: Path, server: LocalServer, hosts: list[BotHost],
                       bots: str) -> BotHost:
    """A host of ``bots`` ([[bots]] tables) on ``server``, signed in as EMAIL, every bot of
    it started and running."""
    session = tmp_path / "session.json"
    SessionCache(session).save(server.url, await server.sign_in(EMAIL))
    config = write_config(tmp_path, bots)
    host = BotHost(config, server.url, session_cache_file=session, data_dir=tmp_path / "data")
    hosts.append(host)
    assert await host.start_all() == []
    for hosted in host.bots.values():
        await state_is(hosted, BotState.RUNNING)
    return host


async def test_two_bots_start_even_when_a_plugin_fails_to_import(
        tmp_path: Path, server: LocalServer, watchers: Callable[..., Any], hosts: list[BotHost],
        caplog: pytest.LogCaptureFixture) -> None:
    """Two bots of one config on one host; a broken plugin is logged, everything else runs."""
    await running_host(tmp_path, server, hosts, '''
[[bots]]
name = "roller"
display_name = "Roller"
plugins = ["dice", "tests.bots.sample_plugins.broken"]

[[bots]]
name = "parrot"
display_name = "Parrot"
prefix = "?"
plugins = ["echo"]
''')
    user = await watchers(server.url, (await server.request_link(EMAIL)).token)

    await user.client.send("!roll")
    await user.client.send("?echo polly")
    roll = await user.wait_for(lambda m: m.display_name == "Roller", what="a roll")
    echo = await user.wait_for(lambda m: m.display_name == "Parrot", what="an echo")
    assert roll.text.startswith("🎲 1d6: ")
    assert echo.text == "polly"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("roller" in e and "broken" in e and "roomz_no_such_dependency" in e
               for e in errors), errors


async def test_the_bots_of_one_host_do_not_answer_each_other(
        tmp_path: Path, server: LocalServer, watchers: Callable[..., Any],
        hosts: list[BotHost]) -> None:
    """The host hands its bots one registry of who sent what: the dice bot ignores the
    echo bot's ``!roll`` and answers the user's."""
    await running_host(tmp_path, server, hosts, '''
[[bots]]
name = "parrot"
display_name = "Parrot"
plugins = ["echo"]

[[bots]]
name = "roller"
display_name = "Roller"
plugins = ["dice"]
''')
    user = await watchers(server.url, (await server.request_link(EMAIL)).token)

    await user.client.send("!echo !roll")
    await user.wait_for(lambda m: (m.display_name, m.text) == ("Parrot", "!roll"),
                        what="the parrot's !roll")
    await user.client.send("!roll")
    # The roller answers in order: a roll for the parrot ("Parrot: 🎲 ...") would come first.
    await user.wait_for(lambda m: m.display_name == "Roller", what="the roll for the user")
    rolls = [m.text for _, m in user.seen if m.display_name == "Roller"]
    assert len(rolls) == 1 and rolls[0].startswith("🎲 1d6: "), rolls


async def test_reload_keeps_the_bot_or_the_old_code(tmp_path: Path, server: LocalServer,
                                                    hosts: list[BotHost]) -> None:
    """reload() re-imports a plugin in the bots that run it and names them; a plugin no
    running bot has is a HostError; code that does not import is ReloadFailed, and the old
    code keeps running."""
    session = tmp_path / "session.json"
    SessionCache(session).save(server.url, await server.sign_in(EMAIL))
    plugin = tmp_path / "hello.py"
    plugin.write_text('from roomz_bots import command\n\n@command\ndef hello() -> str:\n'
                      '    """Greet."""\n    return "v1"\n')
    config = write_config(tmp_path, HELPER.replace('["echo"]', '["echo", "hello.py"]'))
    host = BotHost(config, server.url, session_cache_file=session, data_dir=tmp_path / "data")
    hosts.append(host)
    with pytest.raises(HostError, match=r"^No running bot uses plugin 'hello' \(running "
                                        r"plugins: none\)\.$"):
        host.reload("hello")
    await host.start("helper")
    bot = host.active["helper"]

    plugin.write_text(plugin.read_text().replace("v1", "v2"))
    assert host.reload("hello.py") == ["helper"]
    command = bot.find_command("hello")
    assert command is not None and command.func() == "v2"
    plugin.write_text("raise RuntimeError('broken on purpose')\n")
    with pytest.raises(ReloadFailed, match="^Reload failed, keeping the running version: "
                                           ".*broken on purpose"):
        host.reload("hello")
    command = bot.find_command("hello")
    assert command is not None and command.func() == "v2"
    with pytest.raises(HostError, match=r"^No running bot uses plugin 'dice' \(running "
                                        r"plugins: echo, hello, help\)\.$"):
        host.reload("dice")


@pytest.mark.parametrize(("seconds", "said"), [
    (0.2, "1 s"), (44.6, "45 s"), (60, "1 min"), (83, "1 min 23 s"),
    (3600 * 2 + 5 * 60 + 9, "2 h 5 min"), (3600, "1 h")])
def test_durations_read_as_people_say_them(seconds: float, said: str) -> None:
    """How long a bot was away, in a log line."""
    assert duration(seconds) == said
