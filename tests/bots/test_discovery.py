"""Finding plugins: bundled by name, installed packages' entry points, module paths, files."""

from __future__ import annotations

import logging
import shutil
import textwrap
from pathlib import Path

import pytest

from roomz_bots import PluginError, load_plugin
from roomz_bots.config import ConfigError, load_config
from roomz_bots.runner import build_bot
from roomz_bots.testing import BotHarness

from .helpers import SAMPLES

BUNDLED = {"echo": {"echo"}, "dice": {"roll"}, "greeter": set(),
           "reminders": {"remind", "reminders", "unremind"}, "poll": {"poll"}}


def install_distribution(site: Path, entry_points: dict[str, str], *, name: str = "myplug",
                         module_source: str | None = None) -> None:
    """Write an installed distribution into ``site``: dist-info, entry points, the module."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[roomz.plugins]\n{lines}")
    (site / "myplug_roomz.py").write_text(module_source or textwrap.dedent('''
        """An installed plugin."""

        from roomz_bots import command


        @command
        def plugged() -> str:
            """Say where this plugin came from."""
            return "from an installed package"
    '''))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on ``sys.path`` for this test, where distributions can be installed."""
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_plugins_load_by_name(name: str) -> None:
    """``plugins = ["dice"]``: each bundled plugin loads by its bare name with its commands."""
    plugin = load_plugin(name)
    assert plugin.name == name
    assert plugin.module.__name__ == f"roomz_bots.bundled.{name}"
    assert {c.name for c in plugin.commands} == BUNDLED[name]


async def test_an_installed_package_is_found_through_its_entry_point(site: Path) -> None:
    """A real distribution on ``sys.path`` with a ``roomz.plugins`` entry point loads and runs."""
    install_distribution(site, {"myplug": "myplug_roomz"})

    plugin = load_plugin("myplug")
    assert plugin.name == "myplug"
    assert plugin.module.__name__ == "myplug_roomz"

    async with BotHarness(["myplug"]) as chat:
        await chat.say("!plugged")
        assert (await chat.reply()).text == "from an installed package"


def test_a_bundled_plugin_wins_over_an_entry_point_of_the_same_name(site: Path) -> None:
    """The search order starts with the bundled plugins."""
    install_distribution(site, {"dice": "myplug_roomz"})
    assert load_plugin("dice").module.__name__ == "roomz_bots.bundled.dice"


def test_an_entry_point_wins_over_a_module_of_the_same_name(site: Path) -> None:
    """An installed plugin's name is tried before a module path of the same name."""
    install_distribution(site, {"textwrap": "myplug_roomz"})
    assert load_plugin("textwrap").module.__name__ == "myplug_roomz"


def test_an_entry_point_that_fails_to_import_names_the_plugin_and_the_error(site: Path) -> None:
    """The installed module raises on import: PluginError with the name and the import error."""
    install_distribution(site, {"badplug": "myplug_roomz"},
                         module_source="import roomz_no_such_dependency\n")
    with pytest.raises(PluginError, match=r"'badplug'.*ModuleNotFoundError.*"
                                          r"roomz_no_such_dependency"):
        load_plugin("badplug")


def test_a_dotted_module_path_is_a_plugin() -> None:
    """``plugins = ["tests.bots.sample_plugins.calc"]`` imports that module."""
    plugin = load_plugin("tests.bots.sample_plugins.calc")
    assert plugin.name == "tests.bots.sample_plugins.calc"
    assert {c.name for c in plugin.commands} == {"add", "mul", "repeat", "total", "whoami",
                                                 "shout", "pick"}


def write_config(folder: Path, plugins: list[str], extra: str = "") -> Path:
    """A config file in ``folder`` with one bot using ``plugins``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bots.toml"
    names = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'[[bots]]\nname = "b"\nplugins = [{names}]\n{extra}')
    return path


async def test_files_and_folders_are_found_relative_to_the_config_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mine/file_plugin.py`` and the package ``mine/folder_plugin`` load next to the config."""
    config_dir = tmp_path / "conf"
    (config_dir / "mine").mkdir(parents=True)
    shutil.copy(SAMPLES / "file_plugin.py", config_dir / "mine" / "file_plugin.py")
    shutil.copytree(SAMPLES / "folder_plugin", config_dir / "mine" / "folder_plugin")
    path = write_config(config_dir, ["mine/file_plugin.py", "mine/folder_plugin"])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    config = load_config(path)
    plugins, failed = config.load_plugins(config.bots[0])
    assert failed == []

    async with BotHarness([*plugins]) as chat:
        await chat.say("!filed")
        assert (await chat.reply()).text == "from a file"
        await chat.say("!packaged")
        assert (await chat.reply()).text == "from a folder"


async def test_a_folder_plugins_commands_may_live_in_its_submodules(tmp_path: Path) -> None:
    """A package plugin that imports a ``@command`` from its own submodule answers it."""
    shutil.copytree(SAMPLES / "folder_plugin", tmp_path / "folder_plugin")
    plugin = load_plugin("./folder_plugin", tmp_path)
    assert {c.name for c in plugin.commands} == {"packaged", "folded"}

    async with BotHarness([plugin]) as chat:
        await chat.say("!folded")
        assert (await chat.reply()).text == "from a submodule"


def test_a_missing_file_plugin_names_the_file(tmp_path: Path) -> None:
    """A path that does not exist is a PluginError naming the plugin and the path."""
    with pytest.raises(PluginError, match=r"'nowhere\.py'.*nowhere\.py"):
        load_plugin("nowhere.py", tmp_path)


def test_an_unknown_plugin_says_where_it_was_looked_for() -> None:
    """A name found nowhere: PluginError naming it and the routes tried."""
    with pytest.raises(PluginError) as caught:
        load_plugin("roomz_no_such_plugin")
    message = str(caught.value)
    assert "roomz_no_such_plugin" in message
    assert "bundled" in message and "roomz.plugins" in message


def test_a_file_named_without_py_is_not_found_and_the_error_says_how_to_name_it(
        tmp_path: Path) -> None:
    """``plugins = ["quotes"]`` with quotes.py beside the config: not found (a bare name is
    a module), and the one line says to write ``"quotes.py"``."""
    shutil.copy(SAMPLES / "file_plugin.py", tmp_path / "quotes.py")
    path = write_config(tmp_path, ["quotes"])
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        build_bot(config, config.bots[0], data_dir=tmp_path / "data")
    assert str(caught.value).endswith(
        f"plugin 'quotes' not found: it is not bundled, no installed package offers it (entry "
        f"point group 'roomz.plugins'), and no module has that name; to load the file "
        f"{tmp_path / 'quotes.py'}, write \"quotes.py\"")


def test_a_plugin_that_fails_to_import_names_itself_and_the_error() -> None:
    """Its dependency is missing: PluginError with the plugin's name and the ImportError."""
    with pytest.raises(PluginError, match=r"'tests\.bots\.sample_plugins\.broken'.*"
                                          r"ModuleNotFoundError.*roomz_no_such_dependency"):
        load_plugin("tests.bots.sample_plugins.broken")


def test_a_file_plugin_that_fails_to_import_names_itself_and_the_error(tmp_path: Path) -> None:
    """The same for a ``.py`` file next to the config."""
    shutil.copy(SAMPLES / "broken.py", tmp_path / "broken.py")
    with pytest.raises(PluginError, match=r"'broken\.py'.*ModuleNotFoundError"):
        load_plugin("broken.py", tmp_path)


async def test_build_bot_logs_a_failed_plugin_and_keeps_the_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The bot is built with the plugins that loaded; the failure is logged with name and error."""
    path = write_config(tmp_path, ["dice", "tests.bots.sample_plugins.broken", "echo"])
    config = load_config(path)
    caplog.set_level(logging.ERROR)

    bot = build_bot(config, config.bots[0], data_dir=tmp_path / "data")

    assert [p.name for p in bot.plugins] == ["help", "dice", "echo"]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "tests.bots.sample_plugins.broken" in line
    assert "No module named 'roomz_no_such_dependency'" in line
