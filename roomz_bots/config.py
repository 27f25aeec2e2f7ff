"""Bots from a TOML file: load, substitute ``${VAR}``, validate, and report mistakes in one line.

See ``config.example.toml`` for every key.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from .bot import MISSED_COMMAND_MAX_AGE
from .conversion import ConversionError, convert, describe
from .plugins import Plugin, PluginError, load_plugin, plugin_name

log = logging.getLogger("roomz_bots")

DEFAULT_SERVER_URL = "http://localhost:8000"
#: The longest wait, in seconds, between two attempts of a bot to reach its server.
DEFAULT_RECONNECT_MAX_DELAY = 60.0
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: The keys of ``[client]`` and ``[[bots]]`` that must be above 0 (and finite) when given.
POSITIVE = {"flood_burst", "flood_per_second", "flood_queue", "reconnect_max_delay"}
T = TypeVar("T")


class ConfigError(Exception):
    """The config file is wrong; the message names the file, the key or line, and what to do."""


@dataclass
class ClientConfig:
    """The ``[client]`` table: what every bot shares."""

    server_url: str = DEFAULT_SERVER_URL
    session_cache_file: Path | None = None
    reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY


@dataclass
class BotConfig:
    """One ``[[bots]]`` entry."""

    name: str
    plugins: list[str]
    display_name: str | None = None
    prefix: str = "!"
    session_cache_file: Path | None = None
    flood_burst: int = 3
    flood_per_second: float = 1.0
    flood_queue: int = 20
    #: The longest wait between two attempts to reach the server; None: ``[client]``'s.
    reconnect_max_delay: float | None = None
    #: Commands sent while the bot was away are answered if at most this many seconds old.
    missed_command_max_age: float = MISSED_COMMAND_MAX_AGE
    #: A command that raises is answered in the chat with one line saying so.
    reply_errors: bool = True


@dataclass
class Config:
    """A whole config file, validated."""

    path: Path
    server_url: str = DEFAULT_SERVER_URL
    session_cache_file: Path | None = None
    bots: list[BotConfig] = field(default_factory=list)
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The longest wait between two attempts of a bot to reach the server, in seconds.
    reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY

    def reconnect_max_delay_of(self, bot: BotConfig) -> float:
        """The longest wait between two attempts of ``bot``: its own, else ``[client]``'s."""
        own = bot.reconnect_max_delay
        return self.reconnect_max_delay if own is None else own

    def load_plugins(self, bot: BotConfig) -> tuple[list[Plugin], list[PluginError]]:
        """Import the bot's plugins; the ones that fail are returned, not raised."""
        loaded: list[Plugin] = []
        failed: list[PluginError] = []
        for name in bot.plugins:
            try:
                loaded.append(load_plugin(name, self.path.parent))
            except PluginError as exc:
                failed.append(exc)
        return loaded, failed

    def settings_of(self, plugins: list[Plugin]) -> dict[str, dict[str, Any]]:
        """Validated ``[plugins.NAME]`` values for ``plugins``; raises :class:`ConfigError`."""
        return {p.name: check_settings(self, p) for p in plugins}


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file; raises :class:`ConfigError` with one clear line."""
    path = Path(path).expanduser()
    env = dict(os.environ) if env is None else env
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    data = _substitute(raw, env, path, "")
    _warn_unknown(path, "top level", data, ["client", "bots", "plugins"])
    client = _read_table(path, "[client]", data.get("client", {}), ClientConfig)
    plugin_settings = data.get("plugins", {})
    if not isinstance(plugin_settings, dict):
        raise ConfigError(f"{path}: [plugins] must be a table")
    config = Config(path=path, server_url=client.server_url,
                    session_cache_file=client.session_cache_file,
                    plugin_settings=plugin_settings,
                    reconnect_max_delay=client.reconnect_max_delay)
    bots = data.get("bots", [])
    if not isinstance(bots, list) or not all(isinstance(b, dict) for b in bots):
        raise ConfigError(f"{path}: 'bots' must be [[bots]] tables")
    for i, table in enumerate(bots, 1):
        config.bots.append(_read_bot(path, table, i))
    names = [b.name for b in config.bots]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"{path}: two bots are named {dupes[0]!r}; names must differ")
    _warn_unread(path, plugin_settings, config.bots)
    return config


def check_settings(config: Config, plugin: Plugin) -> dict[str, Any]:
    """Check ``[plugins.NAME]`` against the plugin's ``Settings``; unknown keys are warned about."""
    section = f"[plugins.{plugin.name}]"
    values = config.plugin_settings.get(plugin.name, {})
    if not isinstance(values, dict):
        raise ConfigError(f"{config.path}: {section} must be a table")
    settings_type = plugin.settings_type
    if settings_type is None:
        if values:
            log.warning("%s: %s: plugin %r declares no settings; ignoring %s", config.path,
                        section, plugin.name, ", ".join(values))
        return {}
    _read(config.path, section, values, settings_type)
    return dict(values)


def _read(path: Path, section: str, values: Any, kind: type[T]) -> T:
    """``values``, the table ``section``, as the dataclass ``kind``: unknown keys are warned
    about, a mistake is a :class:`ConfigError`."""
    known = [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]
    if isinstance(values, dict):
        _warn_unknown(path, section, values, known)
    try:
        return convert(values, kind)
    except ConversionError as exc:
        where = f"{section} {exc.key}" if exc.key else section
        raise ConfigError(f"{path}: {where}: {exc.problem}") from None


def _read_table(path: Path, section: str, values: Any, kind: type[T]) -> T:
    """``[client]`` or a ``[[bots]]`` table, read: its numbers named in ``POSITIVE`` (when
    given) must be above 0."""
    table = _read(path, section, values, kind)
    for key, declared in typing.get_type_hints(kind).items():
        number = getattr(table, key)
        if key in POSITIVE and number is not None and not 0 < number < math.inf:
            # TOML also has inf and nan.
            raise ConfigError(f"{path}: {section} {key}: expected {describe(declared)} "
                              f"above 0, got {number!r}")
    return table


def _read_bot(path: Path, table: dict[str, Any], number: int) -> BotConfig:
    """The ``[[bots]]`` table ``table``, the ``number``-th: named by its name once it has one."""
    name = table.get("name")
    section = f"[[bots]] {name!r}" if name and isinstance(name, str) else f"[[bots]] #{number}"
    bot = _read_table(path, section, table, BotConfig)
    if not bot.name:
        raise ConfigError(f"{path}: {section}: missing key 'name' (a string)")
    if not bot.prefix or bot.prefix != bot.prefix.strip():
        raise ConfigError(f"{path}: {section} prefix: must be non-empty, no spaces")
    return bot


def _warn_unknown(path: Path, section: str, table: dict[str, Any], known: list[str]) -> None:
    for key in sorted(table.keys() - set(known)):
        log.warning("%s: %s: unknown key %r (known: %s)", path, section, key,
                    ", ".join(known) or "none")


def _warn_unread(path: Path, plugin_settings: dict[str, Any], bots: list[BotConfig]) -> None:
    """Warn about ``[plugins.NAME]`` tables that no bot's plugin reads (a typo, mostly)."""
    loaded = sorted({"help", *(plugin_name(spec) for bot in bots for spec in bot.plugins)})
    for name in sorted(plugin_settings.keys() - set(loaded)):
        hint = difflib.get_close_matches(name, loaded, n=1)
        maybe = f" (did you mean {hint[0]!r}?)" if hint else f" (loaded: {', '.join(loaded)})"
        log.warning("%s: [plugins.%s]: no bot loads a plugin named %r%s, so nothing reads "
                    "these settings", path, name, name, maybe)


def _substitute(value: Any, env: dict[str, str], path: Path, where: str) -> Any:
    """Replace ``${VAR}`` in every string with the environment's value."""
    if isinstance(value, str):
        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{path}: {where or 'a value'}: environment variable "
                                  f"{name} is not set")
            return env[name]
        return _VARIABLE.sub(variable, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, path, f"{where}.{k}".lstrip(".")) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, path, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
