"""A headless bot killed (SIGKILL) while its question is open: the next run's
``on_answer`` gets the answer or the timeout, once, however often it restarts after."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roomz.content import QUESTION
from tests.server.proc import RestartableServer

from .headless import Cli, bot_config, sign_in, user_on
from .helpers import SAMPLES, Watcher, wait_until


async def asker_config(tmp_path: Path, server: RestartableServer, timeout: float) -> Path:
    """A config whose bot ``roller`` runs the sample plugin ``asker.py``."""
    shutil.copy(SAMPLES / "asker.py", tmp_path / "asker.py")
    session = tmp_path / "cache" / "session.json"
    await sign_in(server, session)
    return bot_config(tmp_path, server.url, session, ("asker.py",),
                      more=f"[plugins.asker]\ntimeout = {timeout}\n")


async def running(headless: Callable[..., Any], config: Path) -> Cli:
    """The runner, started and connected."""
    cli: Cli = await headless(config)
    await cli.wait_for_line(r"bot roller is running")
    return cli


async def killed(cli: Cli) -> None:
    """SIGKILL: no shutdown, and the bot's place in the history maybe not saved."""
    cli.process.send_signal(signal.SIGKILL)
    await cli.wait()


async def settled(user: Watcher) -> None:
    """Return once the bot has answered a command sent now: what it heard again of the
    history came before, so whatever it had to say of it has been said."""
    usage = "!deploy <target...>: Ask before deploying to TARGET."
    before = user.texts.count(usage)
    await user.client.send("!help deploy")
    await wait_until(lambda: user.texts.count(usage) > before,
                     what=lambda: f"the help line; saw {user.texts}")


async def asked(user: Watcher, target: str) -> dict[str, Any]:
    """Ask the bot to deploy to ``target``; its question's message."""
    await user.client.send(f"!deploy {target}")
    question = await user.wait_for(lambda m: m.content_type == QUESTION
                                   and m.text.startswith(f"Deploy to {target}?"))
    return question.raw


async def test_an_answer_after_a_restart_reaches_on_answer_once(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """Killed while asking; back, it hears the answer: once, and not again after it is
    killed once more (before it saved its place, so it hears the answer again)."""
    config = await asker_config(tmp_path, server_process, timeout=60)
    cli = await running(headless, config)
    user = await user_on(server_process, watchers)
    question = await asked(user, "prod")
    await settled(user)  # the server's acknowledgement of the question came before
    await killed(cli)

    cli = await running(headless, config)
    await user.client.answer(question, "yes")
    await user.wait_for_text("Late: Deploying to prod.")
    await killed(cli)

    cli = await running(headless, config)
    await settled(user)
    assert user.texts.count("Late: Deploying to prod.") == 1, user.texts
    assert "Deploying to prod." not in user.texts
    assert not cli.matching("on_answer"), cli.stderr


async def test_an_answer_given_while_the_bot_was_down_reaches_on_answer_once(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """Answered while no bot runs: the next run hears it from the history, and acts on it.
    Killed as soon as the question is out, maybe before the server's acknowledgement told
    the bot its id: the next run knows it by its question, heard again."""
    config = await asker_config(tmp_path, server_process, timeout=60)
    cli = await running(headless, config)
    user = await user_on(server_process, watchers)
    question = await asked(user, "prod")
    await killed(cli)
    await user.client.answer(question, "no")

    line = await acted_on_once(headless, config, user, "Late: Not deploying to prod.")
    assert "{'target': 'prod'} choices=('no',) timed_out=False counts=None" in line, line


async def test_a_timeout_while_the_bot_was_down_reaches_on_answer_once(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """Nobody answered while no bot ran: the next run gets the server's timeout, with the
    default, once."""
    config = await asker_config(tmp_path, server_process, timeout=3)
    cli = await running(headless, config)
    user = await user_on(server_process, watchers)
    await asked(user, "prod")
    await settled(user)
    await killed(cli)
    await user.wait_for(lambda m: bool(m.raw.get("timed_out")), timeout=10)

    line = await acted_on_once(headless, config, user, "Late: Not deploying to prod.")
    assert "choices=('no',) timed_out=True" in line, line


async def test_a_poll_open_across_a_kill_counts_every_answer_once(
        tmp_path: Path, server_process: RestartableServer, headless: Callable[..., Any],
        watchers: Callable[..., Any]) -> None:
    """One answer while the bot runs (maybe heard again after the kill), one while it is
    down: at the poll's timeout the next run's ``on_answer`` counts each once."""
    config = await asker_config(tmp_path, server_process, timeout=4)
    cli = await running(headless, config)
    user, other = [await user_on(server_process, watchers) for _ in range(2)]
    await user.client.send("!vote lunch")
    question = (await user.wait_for(lambda m: m.content_type == QUESTION)).raw
    await user.client.answer(question, "tea")
    await user.wait_for(lambda m: m.raw.get("answer_to") == question["id"])
    await killed(cli)
    await other.client.answer(question, "coffee")

    await acted_on_once(headless, config, user, "Late: lunch: tea 1, coffee 1")


async def acted_on_once(headless: Callable[..., Any], config: Path, user: Watcher,
                        text: str) -> str:
    """The runner started again says ``text`` (its ``on_answer`` acted), and after one
    more kill and start, not again; the runner's log line of the hook."""
    cli = await running(headless, config)
    await user.wait_for_text(text, timeout=10)
    (line,) = cli.matching("on_answer")
    await killed(cli)
    await running(headless, config)
    await settled(user)
    assert user.texts.count(text) == 1, user.texts
    return str(line)
