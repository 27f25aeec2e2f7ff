"""A reply the headless runner was still sending when it was SIGKILLed is sent again by its
next run, from the bot's outbox, with its key: the person sees it exactly once."""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.bots.conftest import headless  # noqa: F401 - the runner, killed at the end
from tests.bots.headless import Cli, bot_config
from tests.bots.helpers import SAMPLES
from tests.server.proc import RestartableServer, ServerProcess

from .helpers import TIMEOUT, Watch, wait_until
from .proxy import TcpProxy

EMAIL = "olga@example.com"
#: The runner's line as a send of this run gets no acknowledgement (after the client's
#: 10 s): the reply is in flight, or reached the server and its acknowledgement did not.
IN_FLIGHT = "no acknowledgement of a message 'held one'"
#: The next run's line as it sends again what its outbox kept.
FROM_THE_OUTBOX = "left unacknowledged by an earlier send"


class Scene:
    """A server, a proxy in front of it for the runner's link, the runner running ``held.py``
    (its reply waits for a file), and a person connected straight to the server."""

    def __init__(self, folder: Path, server: RestartableServer, proxy: TcpProxy,
                 start: Callable[..., Any], person: AsyncClient, *, more: str) -> None:
        self.folder = folder
        self.server = server
        self.proxy = proxy
        self.start = start
        self.person = person
        self.watch = Watch("person", person)
        shutil.copy(SAMPLES / "held.py", folder / "held.py")
        self.config = bot_config(folder, proxy.url, folder / "cache" / "bot.json",
                                 ("held.py",), more=more)
        self.runs: list[Cli] = []

    @property
    def cli(self) -> Cli:
        """The runner running now."""
        return self.runs[-1]

    async def run(self) -> Cli:
        """Start the runner; return once its bot is connected."""
        cli: Cli = await self.start(self.config)
        self.runs.append(cli)
        await cli.wait_for_line(r"bot roller is running", timeout=20)
        return cli

    async def kill(self) -> None:
        """SIGKILL the runner: nothing of it ends cleanly. What the proxy held of its link
        is lost with it (the link is cut), and the proxy forwards again."""
        self.cli.process.send_signal(signal.SIGKILL)
        await self.cli.wait()
        self.proxy.cut()
        self.proxy.restore()

    def replies(self) -> list[str]:
        """The texts of the bot's replies the person saw."""
        return [m["content"] for m in self.watch.messages
                if m.get("content") == "held one"]

    async def settled(self) -> None:
        """Return once a marker the person sends now has reached it: what came before has."""
        marker = await asyncio.wait_for(self.person.send("marker"), TIMEOUT)
        await self.watch.events.wait_for("message", lambda m: m["id"] == marker["message_id"],
                                         timeout=TIMEOUT)

    async def held_in_flight(self, lost: str) -> None:
        """``!held one``; once the bot holds it, its link loses ``lost`` (the reply, or its
        acknowledgement) and the reply goes out; return once the runner says no
        acknowledgement came."""
        assert (await asyncio.wait_for(self.person.send("!held one"), TIMEOUT))["status"] == "ok"
        await self.cli.wait_for_line("holding the reply to one")
        if lost == "the reply itself":
            self.proxy.blackhole()  # the reply never reaches the server
        else:
            self.proxy.deafen()  # it does; its acknowledgement is held on the way back
        (self.folder / "open").touch()
        if lost == "the acknowledgement":
            await self.watch.events.wait_for("message",
                                             lambda m: m["content"] == "held one",
                                             timeout=TIMEOUT)
        await self.cli.wait_for_line(IN_FLIGHT, timeout=25)


@pytest.fixture
async def scene(tmp_path: Path, restartable: RestartableServer,
                proxy_factory: Callable[[list[int]], Any], headless: Callable[..., Any],  # noqa: F811
                make_client: Callable[..., AsyncClient],
                request: pytest.FixtureRequest) -> Scene:
    """A :class:`Scene`, the runner started (a parameter adds lines to its config)."""
    await restartable.start()
    assert restartable.current is not None
    proxy: TcpProxy = await proxy_factory([restartable.port])
    session = await restartable.current.sign_in(EMAIL)
    SessionCache(tmp_path / "cache" / "bot.json").save(proxy.url, session)
    person = make_client(restartable.url, session)
    scene = Scene(tmp_path, restartable, proxy, headless, person,
                  more=getattr(request, "param", ""))
    await scene.run()
    await asyncio.wait_for(person.connect(), TIMEOUT)
    return scene


@pytest.mark.timeout(90)
@pytest.mark.parametrize("lost", ["the reply itself", "the acknowledgement"])
async def test_a_reply_in_flight_as_the_runner_is_killed_is_said_once_by_its_next_run(
        scene: Scene, lost: str) -> None:
    """The soak found it (seed 21, two nodes): a reply being sent again as the runner was
    SIGKILLed died with it, and its command, marked handled, was never answered. Now the
    next run sends it again from the outbox with its key: whether the server had it (only
    its acknowledgement was lost: the server answers ``duplicate``) or not, the person
    sees it once; and a run after that does not send it again."""
    await scene.held_in_flight(lost)
    await scene.kill()
    await scene.settled()
    assert len(scene.replies()) == (0 if lost == "the reply itself" else 1)

    await scene.run()
    if lost == "the reply itself":
        await scene.watch.events.wait_for("message",
                                          lambda m: m["content"] == "held one",
                                          timeout=TIMEOUT)
    await scene.cli.wait_for_line(FROM_THE_OUTBOX)
    await scene.settled()
    assert len(scene.replies()) == 1, scene.replies()

    await scene.kill()
    await scene.run()
    await scene.settled()
    assert len(scene.replies()) == 1, scene.replies()
    assert not scene.cli.matching(FROM_THE_OUTBOX), scene.cli.stderr
    assert not any(run.matching("Traceback") for run in scene.runs)


@pytest.mark.timeout(90)
async def test_a_reply_pending_as_the_runner_stops_cleanly_is_said_by_its_next_run(
        scene: Scene) -> None:
    """Ctrl-C while a reply is on its way: the runner stops (its sends are cancelled),
    says in its log that the reply is kept for the next run, which says it once."""
    assert (await asyncio.wait_for(scene.person.send("!held one"), TIMEOUT))["status"] == "ok"
    await scene.cli.wait_for_line("holding the reply to one")
    scene.proxy.blackhole()
    (scene.folder / "open").touch()
    await scene.cli.wait_for_line("replying to one")
    assert await scene.cli.stop(signal.SIGINT) == 0
    line = scene.cli.matching("stopping while sending a message 'held one'")
    assert line and "kept in its outbox, for its next run" in line[0], scene.cli.stderr
    scene.proxy.cut()  # what the link held of the reply is lost
    scene.proxy.restore()
    await scene.settled()
    assert scene.replies() == []

    await scene.run()
    await scene.watch.events.wait_for("message", lambda m: m["content"] == "held one",
                                      timeout=TIMEOUT)
    await scene.settled()
    assert scene.replies() == ["held one"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("scene", ["missed_command_max_age = 2"], indirect=True)
async def test_a_reply_older_than_missed_command_max_age_is_dropped_with_a_line(
        scene: Scene) -> None:
    """The next run does not send a reply older than the bot's ``missed_command_max_age``
    (as it does not answer a command that old): one INFO line says so, and the outbox is
    empty after it."""
    await scene.held_in_flight("the reply itself")  # 10 s: older than 2 s by then
    await scene.kill()

    await scene.run()
    line = await scene.cli.wait_for_line("not sending again a message")
    assert "INFO" in line and "'held one'" in line and "older than 2 s" in line, line
    await scene.settled()
    assert scene.replies() == []
    await scene.kill()
    await scene.run()
    await scene.settled()
    assert not scene.cli.matching("not sending again|" + FROM_THE_OUTBOX), scene.cli.stderr


@pytest.mark.timeout(90)
async def test_on_a_server_without_send_once_now_a_kept_reply_is_dropped_with_a_warning(
        scene: Scene) -> None:
    """The server came back without history, so without send_once: a reply sent again
    could be said twice, so the next run drops it, with a warning."""
    await scene.held_in_flight("the reply itself")
    await scene.kill()
    server = scene.server
    assert server.current is not None
    await server.current.kill()
    plain = ServerProcess("--no-history", state_home=server.state_home, port=server.port,
                          env={"JWT_SECRET_KEY": server.secret})
    server.started.append(plain)  # killed at the end
    await plain.start()

    await scene.run()
    line = await scene.cli.wait_for_line("not sending again a message")
    assert "WARNING" in line and "no longer offers send_once" in line, line
    await wait_until(lambda: scene.person.connected, 15, "the person back")
    await scene.settled()
    assert scene.replies() == []
    await scene.kill()
    await scene.run()
    assert not scene.cli.matching("not sending again|" + FROM_THE_OUTBOX), scene.cli.stderr
