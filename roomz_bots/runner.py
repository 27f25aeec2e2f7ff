"""The headless runner: every bot of a config in one process, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from roomz import AsyncClient, ClientError
from roomz.session_cache import default_session_file

from .bot import Bot
from .clock import Clock
from .config import BotConfig, Config, ConfigError
from .flood import TokenBucket
from .plugins import PluginNotFound

log = logging.getLogger("roomz_bots")


def build_bot(config: Config, bot: BotConfig, *, clock: Clock | None = None,
              data_dir: Path | None = None) -> Bot:
    """A :class:`Bot` for one ``[[bots]]`` entry; plugins that fail to import are logged
    and skipped, so the others run.

    Raises :class:`~roomz_bots.config.ConfigError` for a plugin no route knows, or wrong
    plugin settings.
    """
    plugins, failed = config.load_plugins(bot)
    for error in failed:
        if isinstance(error, PluginNotFound):  # a typo in the file, not a broken plugin
            raise ConfigError(f"{config.path}: [[bots]] {bot.name!r} plugins: {error}")
        log.error("bot %s: %s", bot.name, error)
    settings = config.settings_of(plugins)
    client = AsyncClient(
        config.server_url,
        session_cache_file=bot.session_cache_file or config.session_cache_file
        or default_session_file(),
    )
    return Bot(bot.name, client, plugins, display_name=bot.display_name, prefix=bot.prefix,
               settings=settings,
               flood=TokenBucket(bot.flood_burst, bot.flood_per_second, bot.flood_queue),
               clock=clock, data_dir=data_dir)


async def run_bots(bots: list[Bot], stop: asyncio.Event) -> int:
    """Start ``bots``, run until ``stop`` is set, then stop them; returns an exit status.

    When a bot cannot sign in, every bot is stopped and the status is 1.
    """
    started: list[Bot] = []
    status = 0
    for bot in bots:
        try:
            await bot.start()
            started.append(bot)
        except ClientError as exc:
            log.error("bot %s cannot sign in to %s: %s. Sign in first: roomz-cli, then "
                      "/login you@example.com and /token TOKEN.", bot.name,
                      bot.client.server_url, exc)
            status = 1
            await bot.stop()
            break
    if status == 0:
        log.info("%d bot(s) running; stop with Ctrl-C", len(started))
        await stop.wait()
    for bot in started:
        await bot.stop()
    return status


async def run_headless(config: Config) -> int:
    """Run every bot of ``config`` until SIGINT or SIGTERM; 0 on a clean stop."""
    bots = [build_bot(config, bot) for bot in config.bots]
    if not bots:
        log.error("%s has no [[bots]]: nothing to run", config.path)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run_bots(bots, stop)
