"""The headless runner: every bot of a config in one process, until SIGINT or SIGTERM.

The bots are hosted by a :class:`~roomz_bots.host.BotHost`: they ride out outages of any
length, and a bot started while the server is down comes up with it. The process ends
with one of :data:`EXIT_STATUSES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from .config import Config
from .host import BotHost, BotState, HostedBot, build_bot

__all__ = ["EXIT_CLEAN", "EXIT_REFUSED", "EXIT_STATUSES", "EXIT_USAGE", "build_bot",
           "run_headless"]

log = logging.getLogger("roomz_bots")

EXIT_CLEAN = 0  # stopped by SIGINT or SIGTERM
EXIT_REFUSED = 1  # a bot's session was refused: every bot stopped
EXIT_USAGE = 2  # a mistake in the command line or the config file
#: The exit statuses of ``roomz-cli --headless``, for ``--help`` and the README.
EXIT_STATUSES = """\
exit status with --headless:
  0  stopped by Ctrl-C (SIGINT) or SIGTERM; the bots' shutdown hooks ran
  1  the server refused a bot's session (or none was kept): every bot stopped;
     sign in again with roomz-cli, then /login you@example.com
  2  a mistake in the command line or the config file (one line says which)
"""


async def run_headless(config: Config, server_url: str | None = None, *,
                       session_cache_file: Path | None = None) -> int:
    """Run every bot of ``config`` on ``server_url`` (default: the config's) until SIGINT
    or SIGTERM; returns the exit status (see :data:`EXIT_STATUSES`).

    ``session_cache_file`` replaces the config's for bots without a file of their own.
    Raises :class:`~roomz_bots.config.ConfigError` (before any bot starts) when a bot's
    config is wrong.
    """
    if not config.bots:
        log.error("%s has no [[bots]]: nothing to run", config.path)
        return EXIT_USAGE
    stop = asyncio.Event()
    refused: list[HostedBot] = []

    def changed(hosted: HostedBot) -> None:
        if hosted.state is BotState.REFUSED:
            refused.append(hosted)
            stop.set()

    host = BotHost(config, server_url or config.server_url,
                   session_cache_file=session_cache_file, on_change=changed)
    errors = await host.start_all(all_or_none=True)
    if errors:
        raise errors[0]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The host says per bot when a connection is lost or back: the client's lines would repeat it.
    client_log = logging.getLogger("roomz.client")
    client_level = client_log.level
    client_log.setLevel(max(logging.WARNING, client_level))
    try:
        log.info("%d bot(s) started on %s; stop with Ctrl-C", len(host.bots), host.server_url)
        await stop.wait()
        if refused:
            others = ", ".join(host.active)
            log.error("the session of bot %s was refused: %sexiting with status %d",
                      refused[0].name, f"stopping {others} and " if others else "",
                      EXIT_REFUSED)
        await host.stop_all()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(RuntimeError):  # the loop may be closing
                loop.remove_signal_handler(sig)
        client_log.setLevel(client_level)
    return EXIT_REFUSED if refused else EXIT_CLEAN
