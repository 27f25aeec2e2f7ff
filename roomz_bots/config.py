"""Bots from a TOML file: load, substitute ``${VAR}``, validate, and report mistakes in one line.

See ``config.example.toml`` for every key.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from .plugins import Plugin, PluginError, load_plugin

log = logging.getLogger("roomz_bots")

DEFAULT_SERVER_URL = "http://localhost:8000"
#: The longest wait, in seconds, between two attempts of a bot to reach its server.
DEFAULT_RECONNECT_MAX_DELAY = 60.0
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
KNOWN = {
    "": {"client", "bots", "plugins"},
    "client": {"server_url", "session_cache_file", "reconnect_max_delay"},
}


class ConfigError(Exception):
    """The config file is wrong; the message names the file, the key or line, and what to do."""


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

    def bot(self, name: str) -> BotConfig | None:
        """The ``[[bots]]`` entry named ``name``, or None."""
        return next((b for b in self.bots if b.name == name), None)

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
    where = _Where(path)
    where.warn_unknown(data, KNOWN[""], "")
    client = where.table(data, "client")
    where.warn_unknown(client, KNOWN["client"], "[client]")
    config = Config(
        path=path,
        server_url=where.string(client, "server_url", "[client]", DEFAULT_SERVER_URL),
        session_cache_file=where.file(client, "session_cache_file", "[client]"),
        plugin_settings=where.table(data, "plugins"),
        reconnect_max_delay=where.positive(client, "reconnect_max_delay", "[client]", float,
                                           DEFAULT_RECONNECT_MAX_DELAY),
    )
    bots = data.get("bots", [])
    if not isinstance(bots, list) or not all(isinstance(b, dict) for b in bots):
        raise ConfigError(f"{path}: 'bots' must be [[bots]] tables")
    for i, bot in enumerate(bots, 1):
        config.bots.append(where.bot(bot, f"[[bots]] #{i}"))
    names = [b.name for b in config.bots]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"{path}: two bots are named {dupes[0]!r}; names must differ")
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
    fields = {f.name: f for f in dataclasses.fields(settings_type)}
    types = typing.get_type_hints(settings_type)
    for key in values.keys() - fields.keys():
        log.warning("%s: %s: unknown key %r (known: %s)", config.path, section, key,
                    ", ".join(fields) or "none")
    checked = {}
    for name, f in fields.items():
        if name in values:
            checked[name] = _expect(values[name], types[name], config.path, f"{section} {name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{config.path}: {section}: missing key {name!r} "
                              f"({_describe(types[name])})")
    return checked


class _Where:
    """Validation helpers that know which file they report about."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def warn_unknown(self, table: dict[str, Any], known: set[str], section: str) -> None:
        for key in sorted(table.keys() - known):
            log.warning("%s: %s unknown key %r (known: %s)", self.path, section or "top level:",
                        key, ", ".join(sorted(known)))

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [{key}] must be a table")
        return value

    def string(self, table: dict[str, Any], key: str, section: str,
               default: str | None = None) -> Any:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.path}: {section} {key}: expected a string, "
                              f"got {type(value).__name__} {value!r}")
        return value

    def file(self, table: dict[str, Any], key: str, section: str) -> Path | None:
        value = self.string(table, key, section)
        return Path(value).expanduser() if value else None

    def bot(self, table: dict[str, Any], section: str) -> BotConfig:
        self.warn_unknown(table, {f.name for f in dataclasses.fields(BotConfig)}, section)
        name = self.string(table, "name", section)
        if not name:
            raise ConfigError(f"{self.path}: {section}: missing key 'name' (a string)")
        section = f"[[bots]] {name!r}"
        plugins = table.get("plugins")
        if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
            raise ConfigError(f"{self.path}: {section}: 'plugins' must be a list of plugin "
                              f"names, like [\"dice\", \"echo\"]")
        prefix = self.string(table, "prefix", section, BotConfig.prefix)
        if not prefix or prefix != prefix.strip():
            raise ConfigError(f"{self.path}: {section} prefix: must be non-empty, no spaces")
        return BotConfig(
            name=name, plugins=plugins, prefix=prefix,
            display_name=self.string(table, "display_name", section),
            session_cache_file=self.file(table, "session_cache_file", section),
            flood_burst=self.positive(table, "flood_burst", section, int),
            flood_per_second=self.positive(table, "flood_per_second", section, float),
            flood_queue=self.positive(table, "flood_queue", section, int),
            reconnect_max_delay=self.positive(table, "reconnect_max_delay", section, float,
                                              None),
        )

    def positive(self, table: dict[str, Any], key: str, section: str, kind: type,
                 default: Any = dataclasses.MISSING) -> Any:
        """The number ``key`` of ``table``, above 0; ``default`` when absent (by default the
        ``[[bots]]`` default of ``key``)."""
        if default is dataclasses.MISSING:
            default = getattr(BotConfig, key)
        if key not in table and default is None:
            return None
        value = _expect(table.get(key, default), kind, self.path, f"{section} {key}")
        if not 0 < value < math.inf:  # TOML also has inf and nan
            raise ConfigError(f"{self.path}: {section} {key}: expected {_describe(kind)} "
                              f"above 0, got {value!r}")
        return value


def _expect(value: Any, kind: Any, path: Path, where: str) -> Any:
    """``value`` if it is of ``kind`` (ints pass as floats), else a ConfigError."""
    origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        if isinstance(value, list):
            return [_expect(v, item, path, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            try:
                return _expect(value, option, path, where)
            except ConfigError:
                continue
    elif kind is Any:
        return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is int and isinstance(value, bool):
        pass
    elif isinstance(kind, type) and isinstance(value, kind):
        return value
    raise ConfigError(f"{path}: {where}: expected {_describe(kind)}, "
                      f"got {type(value).__name__} {value!r}")


def _describe(kind: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind) or (Any,)
        return f"a list of {_describe(item).removeprefix('a ')}s"
    return names.get(kind, getattr(kind, "__name__", str(kind)))


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
