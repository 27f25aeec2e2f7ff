"""``BotHost``: the one supervisor of a config's bots, for the headless runner and the terminal.

The host starts, stops and reloads the bots of a :class:`~roomz_bots.config.Config` on the
server URL it is given (the config itself is never changed), and keeps each bot's state:

- ``starting``: its startup hooks and its first attempt to connect;
- ``running``: connected;
- ``reconnecting``: the server is away, or was not up when the bot started. Bots never
  give up: they try again with waits that double up to ``reconnect_max_delay`` (60 s);
- ``stopped``: stopped by the host, or never started;
- ``refused``: the server refused the bot's session (or none was kept). The bot stopped:
  only signing in again helps (``roomz-cli``, then ``/login you@example.com``).

It logs one line when a bot loses its connection, one when it is back (and after how
long), and one when it stops; a refused session is one line that says so and what to do.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from roomz import AsyncClient, AuthenticationError, ClientError, ConnectionState, durations
from roomz.backoff import Backoff
from roomz.reconnection import worth_retrying
from roomz.session_cache import SessionCache, default_session_file

from .bot import Bot
from .clock import Clock
from .config import BotConfig, Config, ConfigError
from .flood import TokenBucket
from .origins import Origins
from .plugins import Plugin, PluginError, PluginNotFound, load_plugin

log = logging.getLogger("roomz_bots")

#: The first wait before a bot tries to reach its server again, in seconds (at most the cap).
FIRST_RECONNECT_DELAY = 1.0
#: Shown in sign-in advice when the bot's email is not known.
SOME_EMAIL = "you@example.com"


class BotState(enum.Enum):
    """Where a hosted bot stands; the value is the word ``/bots`` shows."""

    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    REFUSED = "refused"


#: The states of a bot that the host runs (it was started and has not stopped).
ACTIVE = (BotState.STARTING, BotState.RUNNING, BotState.RECONNECTING)


class HostError(Exception):
    """Something the host was asked cannot be done; the message says why, in one line."""


class ReloadFailed(HostError):
    """The new version of a plugin could not be imported; the running version is kept."""


def build_bot(config: Config, bot: BotConfig, *, clock: Clock | None = None,
              data_dir: Path | None = None, server_url: str | None = None,
              session_cache_file: Path | None = None,
              origins: Origins[object] | None = None) -> Bot:
    """A :class:`Bot` for one ``[[bots]]`` entry; plugins that fail to import are logged
    and skipped, so the others run.

    It connects to ``server_url`` (default: the config's) and keeps its session in its own
    ``session_cache_file``, else ``session_cache_file``, else the config's, else the user's
    default file. Its client never gives up reconnecting; the waits grow to the bot's
    ``reconnect_max_delay``. ``origins`` is shared with the bots it must tell apart (by
    default it has its own). Raises :class:`~roomz_bots.config.ConfigError` for a plugin
    no route knows, or wrong plugin settings.
    """
    plugins, failed = config.load_plugins(bot)
    for error in failed:
        if isinstance(error, PluginNotFound):  # a typo in the file, not a broken plugin
            raise ConfigError(f"{config.path}: [[bots]] {bot.name!r} plugins: {error}")
        log.error("bot %s: %s", bot.name, error)
    settings = config.settings_of(plugins)
    cap = config.reconnect_max_delay_of(bot)
    client = AsyncClient(
        server_url or config.server_url,
        session_cache_file=session_file_of(config, bot, session_cache_file),
        max_reconnect_attempts=None, reconnect_delay=min(FIRST_RECONNECT_DELAY, cap),
        reconnect_delay_max=cap,
    )
    return Bot(bot.name, client, plugins, display_name=bot.display_name, prefix=bot.prefix,
               settings=settings,
               flood=TokenBucket(bot.flood_burst, bot.flood_per_second, bot.flood_queue),
               clock=clock, data_dir=data_dir, origins=origins,
               missed_command_max_age=bot.missed_command_max_age,
               reply_errors=bot.reply_errors)


def session_file_of(config: Config, bot: BotConfig, fallback: Path | None = None) -> Path:
    """Where ``bot`` keeps its session: its own file, else ``fallback``, else the config's,
    else the user's default file (the terminal's)."""
    return (bot.session_cache_file or fallback or config.session_cache_file
            or default_session_file())


class HostedBot:
    """One configured bot as the host keeps it: its config, its :class:`Bot` while it has
    one, and its state."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        #: The bot, from its first start on (a new one each start); None before.
        self.bot: Bot | None = None
        self.state = BotState.STOPPED
        #: When the current state began, in seconds since the epoch.
        self.since = time.time()
        #: Why the session was refused (the server's words), while ``refused``.
        self.reason: str | None = None
        #: The email the bot was last signed in as, if it ever was.
        self.email: str | None = None
        self._away_since: float | None = None  # time.monotonic() of the drop, while away
        self._connecting: asyncio.Task[None] | None = None  # the host's connect, if under way
        self._stopping: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        """The bot's name from the config."""
        return self.config.name

    @property
    def active(self) -> bool:
        """True from :meth:`BotHost.start` until the bot stops (or its session is refused)."""
        return self.state in ACTIVE

    @property
    def attempt(self) -> int:
        """While ``reconnecting``: the number of the attempt under way or coming next, else 0."""
        if self.bot is None or self.state is not BotState.RECONNECTING:
            return 0
        return self.bot.client.reconnect_attempt

    @property
    def next_in(self) -> float | None:
        """While ``reconnecting``: seconds until the next attempt (None during one), else None."""
        if self.bot is None or self.state is not BotState.RECONNECTING:
            return None
        return self.bot.client.next_reconnect_in

    def describe(self) -> str:
        """One line for ``/bots``: name, state and plugins, e.g. ``helper: reconnecting since
        14:02:11 (attempt 4, next in 7 s); plugins: dice, echo``."""
        return f"{self.name}: {self.state_text()}; plugins: {', '.join(self.config.plugins)}"

    def state_text(self) -> str:
        """The state in words: ``running``, ``reconnecting since 14:02:11 (attempt 4, next
        in 7 s)``, ``refused (why)``..."""
        if self.state is BotState.RECONNECTING:
            since = time.strftime("%H:%M:%S", time.localtime(self.since))
            next_in = self.next_in
            when = "trying now" if next_in is None else f"next in {math.ceil(next_in)} s"
            attempt = f"attempt {self.attempt}, " if self.attempt else ""
            return f"reconnecting since {since} ({attempt}{when})"
        if self.state is BotState.REFUSED:
            return f"refused ({self.reason})"
        return str(self.state.value)


@dataclass(eq=False)
class BotHost:
    """Starts, stops and reloads the bots of ``config`` on ``server_url``; keeps their states.

    ``session_cache_file`` replaces the config's ``[client]`` file for bots that name none
    of their own (the embedded server's, say); ``data_dir`` and ``clock`` go to every bot.
    ``on_change(hosted)`` is called after each change of a bot's state (from the event
    loop; it must not block). ``in_terminal``: the host runs in the terminal, so the advice
    for a refused session is ``/login`` alone.
    """

    config: Config
    server_url: str
    _: KW_ONLY
    session_cache_file: Path | None = None
    data_dir: Path | None = None
    clock: Clock | None = None
    on_change: Callable[[HostedBot], None] | None = None
    in_terminal: bool = False
    #: Who sent what, for every bot of the host (and the terminal hosting it): none
    #: answers another unless its plugin asks to.
    origins: Origins[object] = field(init=False, default_factory=Origins)
    #: Every configured bot, in the config's order, by name.
    bots: dict[str, HostedBot] = field(init=False)

    def __post_init__(self) -> None:
        self.bots = {b.name: HostedBot(b) for b in self.config.bots}

    # -- what the terminal shows -----------------------------------------------------------

    @property
    def active(self) -> dict[str, Bot]:
        """The bots that run (starting, running or reconnecting), by name, in config order."""
        return {name: hosted.bot for name, hosted in self.bots.items()
                if hosted.active and hosted.bot is not None}

    def describe(self) -> list[str]:
        """One line per configured bot: its name, state and plugins (``/bots``)."""
        return [hosted.describe() for hosted in self.bots.values()]

    def _hosted(self, name: str) -> HostedBot:
        hosted = self.bots.get(name)
        if hosted is None:
            known = ", ".join(self.bots) or "none"
            raise HostError(f"No bot named {name!r} in {self.config.path} (bots: {known}).")
        return hosted

    # -- starting and stopping -------------------------------------------------------------

    async def start(self, name: str) -> HostedBot:
        """Start the bot ``name`` and return at once: it connects in the background, waiting
        for the server if it is not up. Raises :class:`HostError` for an unknown name or a
        bot that runs already, and :class:`~roomz_bots.config.ConfigError` when the bot's
        config is wrong (then it stays stopped)."""
        hosted = self._hosted(name)
        await self._stopped(hosted)
        if hosted.active:
            raise HostError(f"Bot {name} is already running.")
        self._launch(hosted, self._build(hosted))
        return hosted

    async def start_all(self, *, all_or_none: bool = False) -> list[ConfigError]:
        """Start every configured bot that does not run, as :meth:`start` does.

        Returns the mistakes of the bots whose config is wrong (they stay stopped); with
        ``all_or_none``, no bot starts when any is wrong.
        """
        built: list[tuple[HostedBot, Bot]] = []
        errors: list[ConfigError] = []
        for hosted in self.bots.values():
            if hosted.active:
                continue
            try:
                built.append((hosted, self._build(hosted)))
            except ConfigError as exc:
                errors.append(exc)
        if errors and all_or_none:
            return errors
        for hosted, bot in built:
            await self._stopped(hosted)
            if not hosted.active:  # unless started meanwhile
                self._launch(hosted, bot)
        return errors

    async def stop(self, name: str) -> None:
        """Stop the bot ``name``: its shutdown hooks run, its connection closes. Raises
        :class:`HostError` for an unknown name or a bot that does not run."""
        hosted = self._hosted(name)
        if not hosted.active:
            raise HostError(f"Bot {name} is not running.")
        await self._stop(hosted)
        log.info("bot %s stopped", name)

    async def stop_all(self) -> None:
        """Stop every bot that runs, side by side, and wait for those stopping already."""
        async def stop(hosted: HostedBot) -> None:
            if hosted.active:
                await self._stop(hosted)
                log.info("bot %s stopped", hosted.name)
            await self._stopped(hosted)

        await asyncio.gather(*(stop(hosted) for hosted in self.bots.values()))

    def _build(self, hosted: HostedBot) -> Bot:
        return build_bot(self.config, hosted.config, clock=self.clock, data_dir=self.data_dir,
                         server_url=self.server_url,
                         session_cache_file=self.session_cache_file, origins=self.origins)

    def _launch(self, hosted: HostedBot, bot: Bot) -> None:
        """Host ``bot`` for ``hosted``: listen to its client, then start it in a task."""
        hosted.bot, hosted.reason, hosted._away_since = bot, None, None
        bot.client.on("authenticated", lambda event: self._on_authenticated(hosted, bot, event))
        bot.client.on("disconnect", lambda event: self._on_disconnect(hosted, bot))
        bot.client.on("error", lambda event: self._on_error(hosted, bot, event))
        self._set(hosted, BotState.STARTING)
        hosted._connecting = asyncio.create_task(self._start(hosted, bot))

    async def _stop(self, hosted: HostedBot) -> None:
        self._set(hosted, BotState.STOPPED)
        self._wind_down(hosted)
        await self._stopped(hosted)

    def _wind_down(self, hosted: HostedBot, *, refused: bool = False) -> None:
        """Stop the bot in a task of its own, which a caller's cancellation does not cut
        short: the host's connecting first, then the bot (hooks, stores, connection).

        A ``refused`` bot is disconnected before its shutdown hooks run: its session is
        over, so what they send fails at once instead of waiting for an answer that a
        connection the server is closing never gives.
        """
        async def wind_down(connecting: asyncio.Task[None] | None, bot: Bot | None) -> None:
            if connecting is not None:
                connecting.cancel()
                await asyncio.wait({connecting})
            if bot is not None:
                if refused:
                    await bot.client.disconnect()
                await bot.stop()

        hosted._stopping = asyncio.create_task(wind_down(hosted._connecting, hosted.bot))

    async def _stopped(self, hosted: HostedBot) -> None:
        """Wait until the bot has finished stopping, if it is stopping."""
        if hosted._stopping is not None:
            await asyncio.wait({hosted._stopping})

    # -- connecting ------------------------------------------------------------------------

    async def _start(self, hosted: HostedBot, bot: Bot) -> None:
        await bot.run_startup()
        if not await self._connect(hosted, bot):
            return
        log.info("bot %s is running with plugins: %s", bot.name, bot.plugin_names)
        self._set(hosted, BotState.RUNNING)
        if bot.client.connection_state is ConnectionState.RECONNECTING:
            self._lost(hosted, bot)  # dropped again at once, before it counted as running

    async def _connect(self, hosted: HostedBot, bot: Bot) -> bool:
        """Connect ``bot``, trying again until the server answers; False when its session
        was refused (the bot is then stopping)."""
        cap = bot.client.reconnect_delay_max
        broken = Backoff(bot.client.reconnect_delay, cap)  # for a server that misbehaves
        retry = hosted.state is BotState.RECONNECTING
        while True:
            try:
                await bot.connect(retry=retry)
                return True
            except ClientError as exc:
                if isinstance(exc, AuthenticationError) and not worth_retrying(exc):
                    self._refuse(hosted, bot, *self._refusal(hosted, exc))
                    return False
                if not retry and worth_retrying(exc):  # the server is away: the client waits
                    log.warning("bot %s: %s; trying again until the server answers (waits "
                                "grow to %s)", bot.name, exc, duration(cap))
                else:  # a server that answers wrongly: never worth giving up on either
                    delay = broken.next_delay()
                    log.warning("bot %s: %s; trying again in %s", bot.name, exc,
                                duration(delay))
                    await asyncio.sleep(delay)
                retry = True
                if hosted._away_since is None:
                    hosted._away_since = time.monotonic()
                self._set(hosted, BotState.RECONNECTING)

    async def _reconnect(self, hosted: HostedBot, bot: Bot) -> None:
        """The client's own attempts ended without a refused session: start them again."""
        if await self._connect(hosted, bot):
            self._back(hosted, bot)

    def _lost(self, hosted: HostedBot, bot: Bot) -> None:
        hosted._away_since = time.monotonic()
        self._set(hosted, BotState.RECONNECTING)
        log.warning("bot %s lost its connection to %s; reconnecting (waits grow to %s)",
                    bot.name, self.server_url, duration(bot.client.reconnect_delay_max))

    def _back(self, hosted: HostedBot, bot: Bot) -> None:
        away = time.monotonic() - (hosted._away_since or time.monotonic())
        hosted._away_since = None
        log.info("bot %s is back after %s", bot.name, duration(away))
        self._set(hosted, BotState.RUNNING)

    # -- the bot's client tells -------------------------------------------------------------

    def _on_authenticated(self, hosted: HostedBot, bot: Bot, event: dict[str, Any]) -> None:
        user = event.get("user")
        if isinstance(user, dict) and isinstance(user.get("email"), str):
            hosted.email = user["email"]
        busy = hosted._connecting is not None and not hosted._connecting.done()
        if hosted.bot is bot and hosted.state is BotState.RECONNECTING and not busy:
            self._back(hosted, bot)  # the client's own attempts succeeded

    def _on_disconnect(self, hosted: HostedBot, bot: Bot) -> None:
        if hosted.bot is not bot or hosted.state is not BotState.RUNNING:
            return
        if bot.client.connection_state is ConnectionState.RECONNECTING:
            self._lost(hosted, bot)

    def _on_error(self, hosted: HostedBot, bot: Bot, event: dict[str, Any]) -> None:
        if hosted.bot is not bot or not hosted.active:
            return
        error = str(event.get("error", ""))
        if event.get("code") == 401:  # a session ended or refused: signing in again helps
            self._refuse(hosted, bot, error.removesuffix("; sign in again"))
        elif bot.client.connection_state is ConnectionState.DISCONNECTED:
            # The client's attempts ended some other way (a broken server): bots never give up.
            log.warning("bot %s: %s; trying again", bot.name, error)
            if hosted._away_since is None:
                hosted._away_since = time.monotonic()
            self._set(hosted, BotState.RECONNECTING)
            hosted._connecting = asyncio.create_task(self._reconnect(hosted, bot))

    # -- a refused session -----------------------------------------------------------------

    def _refusal(self, hosted: HostedBot, exc: AuthenticationError) -> tuple[str, bool]:
        """Why a connect was refused, in the server's words where it gave some; and whether
        there was a session to refuse."""
        file = session_file_of(self.config, hosted.config, self.session_cache_file)
        try:
            if SessionCache(file).load(self.server_url) is None:
                return f"not signed in to {self.server_url} (no session in {file})", False
        except ClientError as unreadable:  # the message says what is wrong with the file
            return str(unreadable), False
        return f"the server refused the session: {exc.detail or exc}", True

    def _refuse(self, hosted: HostedBot, bot: Bot, reason: str, had_session: bool = True
                ) -> None:
        """The session is refused: say so and what to do, in one line; the bot stops."""
        hosted.reason = reason
        self._set(hosted, BotState.REFUSED)
        log.error("bot %s stopped: %s. Sign in %s: %s", bot.name, reason,
                  "again" if had_session else "first", self.sign_in_advice(hosted))
        self._wind_down(hosted, refused=True)

    def sign_in_advice(self, hosted: HostedBot) -> str:
        """How to sign the bot in again, in the terminal's words: ``roomz-cli``, with the
        options that make it use the bot's server and session file, then ``/login`` (in the
        terminal, ``/login`` alone)."""
        login = f"/login {hosted.email or SOME_EMAIL}"
        if self.in_terminal and hosted.config.session_cache_file is None:
            return login
        command = ["roomz-cli"]
        if self.server_url != self.config.server_url:
            command += ["-s", self.server_url]
        own = hosted.config.session_cache_file
        shared = self.session_cache_file or self.config.session_cache_file
        if shared is not None and shared != default_session_file():
            command += ["--config", str(self.config.path)]
        advice = f"{' '.join(command)}, then {login}"
        if own is not None:
            advice += (f" (and remove session_cache_file from [[bots]] {hosted.name!r}: it "
                       f"keeps a session of its own in {own})")
        return advice

    # -- plugins ---------------------------------------------------------------------------

    def reload(self, plugin: str) -> list[str]:
        """Re-import ``plugin`` (its name or its spec from the config) in every bot that
        runs it, keeping their connections and stores; returns those bots' names.

        Raises :class:`HostError` when no running bot uses it, and :class:`ReloadFailed`
        when the new code does not import (the old code keeps running).
        """
        def named(candidate: Plugin) -> bool:
            return plugin in (candidate.name, candidate.spec)

        users = [b for b in self.active.values() if any(named(p) for p in b.plugins)]
        if not users:
            running = sorted({p.name for b in self.active.values() for p in b.plugins})
            raise HostError(f"No running bot uses plugin {plugin!r} (running plugins: "
                            f"{', '.join(running) or 'none'}).")
        old = next(p for p in users[0].plugins if named(p))
        prefix = old.module.__name__
        saved = {k: m for k, m in sys.modules.items() if k == prefix or k.startswith(prefix + ".")}
        for key in saved:
            del sys.modules[key]
        try:
            fresh = load_plugin(old.spec or plugin, self.config.path.parent)
        except PluginError as exc:
            sys.modules.update(saved)  # the old version keeps running
            raise ReloadFailed(f"Reload failed, keeping the running version: {exc}") from None
        for bot in users:
            bot.replace_plugin(fresh)
        return [bot.name for bot in users]

    # -- states ----------------------------------------------------------------------------

    def _set(self, hosted: HostedBot, state: BotState) -> None:
        if hosted.state is state:
            return
        hosted.state, hosted.since = state, time.time()
        if self.on_change is not None:
            try:
                self.on_change(hosted)
            except Exception:  # a listener's bug must not stop the bot
                log.exception("bot %s: on_change failed", hosted.name)


def duration(seconds: float) -> str:
    """``seconds`` for people (:func:`roomz.durations.duration`), but at least ``1 s``: a
    wait to come or a time away is never said to be none."""
    return durations.duration(max(seconds, 1))
