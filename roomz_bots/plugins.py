"""Finding and loading plugins: bundled, installed (entry points), dotted modules, files.

A plugin is a module. Its ``@hookimpl`` functions implement hooks, its ``@command``
functions are chat commands, an optional ``Settings`` dataclass declares its settings,
and ``REACT_TO_BOTS = True`` lets it hear the other bots hosted in the same process.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field, is_dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import builtin_help, hookspecs
from .commands import Command
from .conversion import ConversionError, convert
from .failures import PLUGIN_FAILURES

ENTRY_POINT_GROUP = "roomz.plugins"
BUILTIN = {"help": builtin_help}


class PluginError(Exception):
    """A plugin could not be found, imported or validated; the message names it."""


class PluginNotFound(PluginError):
    """No route (bundled, entry point, module, file) knows a plugin of that name, or its
    path names no plugin file (a mistake in the config, not in the plugin)."""


@dataclass
class Plugin:
    """A loaded plugin module and what it declares."""

    name: str
    module: ModuleType
    commands: list[Command] = field(default_factory=list)
    #: How the config named it (``"quotes.py"``, ``"my_pkg.quotes"``), for reloading.
    spec: str = ""

    @property
    def settings_type(self) -> type | None:
        """The plugin's ``Settings`` dataclass, if it declares one."""
        settings = getattr(self.module, "Settings", None)
        return settings if isinstance(settings, type) and is_dataclass(settings) else None

    @property
    def reacts_to_bots(self) -> bool:
        """True when the plugin wants messages of other bots hosted in this process."""
        return bool(getattr(self.module, "REACT_TO_BOTS", False))


def plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows Roomz's hooks."""
    pm = pluggy.PluginManager("roomz")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugin(name: str | ModuleType, base_dir: Path | None = None) -> Plugin:
    """Import the plugin called ``name`` (or take a module) and check its hooks.

    Raises :class:`PluginError` saying what is wrong.
    """
    if isinstance(name, ModuleType):
        module, spec, name = name, name.__name__, name.__name__.rpartition(".")[2]
    else:
        module, spec, name = _import(name, base_dir or Path.cwd()), name, plugin_name(name)
    commands = [v for v in vars(module).values() if isinstance(v, Command) and _own(v.func, module)]
    plugin = Plugin(name=name, module=module, commands=commands, spec=spec)
    check_hooks(plugin)
    check_settings_type(plugin)
    for command in plugin.commands:
        command.plugin = name
    return plugin


def plugin_name(spec: str) -> str:
    """The name of the plugin the config calls ``spec``, which its settings go under: a
    file's or folder's own name (``"./quotes.py"`` is ``quotes``), else ``spec`` itself."""
    if _is_path(spec):
        return Path(spec).stem if spec.endswith(".py") else Path(spec).name
    return spec


def check_hooks(plugin: Plugin) -> None:
    """Fail loudly, in one line, on a misspelled hook, a hook asking for an argument it
    cannot get, or a function named after a hook without ``@hookimpl`` (never called)."""
    pm = plugin_manager()
    given = {name: hook.spec.argnames for name, hook in vars(pm.hook).items()
             if hook.spec is not None}
    module = plugin.module
    for name, value in vars(module).items():
        options = pm.parse_hookimpl_opts(module, name)
        if options is None:
            if name in given and inspect.isfunction(value) and _own(value, module):
                raise PluginError(f"plugin {plugin.name!r}: {name} is named after a hook but "
                                  "has no @hookimpl, so it would never be called")
            continue
        hook = options.get("specname") or name
        if hook not in given:
            hint = difflib.get_close_matches(hook, list(given), n=1)
            maybe = f"; did you mean {hint[0]!r}?" if hint else ""
            raise PluginError(f"plugin {plugin.name!r}: there is no hook named {hook!r}{maybe}")
        unknown = [arg for arg in _required_arguments(value) if arg not in given[hook]]
        if unknown:
            asked = ", ".join(repr(arg) for arg in unknown)
            raise PluginError(f"plugin {plugin.name!r}: {name} asks for {asked}, which the "
                              f"hook does not give (it gives {', '.join(given[hook])})")
    try:  # pluggy's own checks (wrappers...), its lines joined: log lines show only the first
        pm.register(module, name=plugin.name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {plugin.name!r}: {'; '.join(str(exc).splitlines())}") from None


def check_settings_type(plugin: Plugin) -> None:
    """A ``Settings`` that is no dataclass could not be filled from the config: fail loudly."""
    settings = getattr(plugin.module, "Settings", None)
    if settings is not None and plugin.settings_type is None:
        raise PluginError(f"plugin {plugin.name!r}: Settings must be a @dataclass "
                          "(from dataclasses import dataclass), or be named otherwise")


def _own(function: Any, module: ModuleType) -> bool:
    """True when ``function`` was written in ``module`` or its package, not imported."""
    return bool(function.__module__ == module.__name__
                or function.__module__.startswith(module.__name__ + "."))


def _required_arguments(function: Any) -> list[str]:
    """The arguments pluggy passes to a hook implementation: positional, without default."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: pluggy will say what is wrong
        return []
    return [p.name for p in parameters if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _import(name: str, base_dir: Path) -> ModuleType:
    if name in BUILTIN:
        return BUILTIN[name]
    if _is_path(name):
        return _import_path(name, (base_dir / name).expanduser())
    try:
        if importlib.util.find_spec(f"roomz_bots.bundled.{name}") is not None:
            return _run_import(name, f"roomz_bots.bundled.{name}")
    except (ImportError, ValueError):
        pass
    for entry in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            loaded = entry.load()
        except PLUGIN_FAILURES as exc:
            raise PluginError(f"plugin {name!r}: import failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(loaded, ModuleType):
            raise PluginError(f"plugin {name!r}: entry point {entry.value!r} is not a module")
        return loaded
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise PluginNotFound(
            f"plugin {name!r} not found: it is not bundled, no installed package offers it "
            f"(entry point group {ENTRY_POINT_GROUP!r}), and no module has that name"
            + _file_hint(name, base_dir)
        )
    return _run_import(name, name)


def _file_hint(name: str, base_dir: Path) -> str:
    """How to name the file ``name.py`` beside the config, if there is one (a bare name is a
    module, looked up on ``sys.path``)."""
    file = base_dir / f"{name}.py"
    return f'; to load the file {file}, write "{name}.py"' if file.is_file() else ""


def _is_path(name: str) -> bool:
    """True for a plugin named by a file or folder rather than a module name."""
    return name.endswith(".py") or "/" in name or "\\" in name


def _run_import(name: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except PLUGIN_FAILURES as exc:
        raise PluginError(f"plugin {name!r}: import failed: {type(exc).__name__}: {exc}") from exc


def _import_path(name: str, path: Path) -> ModuleType:
    """Import a plugin from a ``.py`` file or a package folder."""
    expected = "expected a .py file or a folder with an __init__.py"
    init = path / "__init__.py" if path.is_dir() else path
    if path.is_dir() and not init.is_file():
        raise PluginNotFound(f"plugin {name!r}: {path} is a folder without an __init__.py; "
                             f"{expected}")
    if not path.exists():
        raise PluginNotFound(f"plugin {name!r}: no file {path}")
    if init.suffix != ".py" or not init.is_file():
        raise PluginNotFound(f"plugin {name!r}: {path} is not a .py file; {expected}")
    module_name = f"roomz_plugin_{path.stem if path.is_file() else path.name}"
    spec = importlib.util.spec_from_file_location(
        module_name, init, submodule_search_locations=[str(path)] if path.is_dir() else None)
    if spec is None or spec.loader is None:  # not expected for a .py file; still one line
        raise PluginError(f"plugin {name!r}: Python cannot import {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so the plugin's own submodules can import each other
    try:
        spec.loader.exec_module(module)
    except PLUGIN_FAILURES as exc:
        del sys.modules[module_name]
        raise PluginError(f"plugin {name!r}: import failed: {type(exc).__name__}: {exc}") from exc
    return module


def settings_for(plugin: Plugin, values: dict[str, Any]) -> Any:
    """The plugin's ``Settings`` converted from ``values`` (``[plugins.NAME]`` as in TOML).

    Raises :class:`PluginError` naming the plugin and the key when a value is wrong (the
    config checks its values first, naming its file: :func:`roomz_bots.config.check_settings`).
    """
    settings_type = plugin.settings_type
    if settings_type is None:
        return None
    try:
        return convert(values, settings_type)
    except ConversionError as exc:
        raise PluginError(f"plugin {plugin.name!r} settings: {exc}") from None
