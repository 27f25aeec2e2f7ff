"""Bot configs: the example loads, ${VAR}s are filled in, every mistake is one clear ConfigError."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from roomz_bots.config import ConfigError, load_config
from roomz_bots.runner import build_bot

REPO = Path(__file__).resolve().parents[2]
ROOMZ_CLI = str(Path(sys.executable).with_name("roomz-cli"))
WEATHER = "tests.bots.sample_plugins.weather"
NOWHERE = "http://127.0.0.1:9"  # nothing listens: no test may reach a real server by accident


def write(tmp_path: Path, text: str) -> Path:
    """``text`` as ``bots.toml`` in ``tmp_path``."""
    path = tmp_path / "bots.toml"
    path.write_text(text)
    return path


def config_error(path: Path, env: dict[str, str] | None = None) -> str:
    """The one ConfigError that loading ``path`` and building its bots raises."""
    with pytest.raises(ConfigError) as caught:
        config = load_config(path, env=env)
        for bot in config.bots:
            build_bot(config, bot, data_dir=path.parent / "data")
    return str(caught.value)


def test_the_example_config_loads() -> None:
    """``config.example.toml`` as shipped: one bot with the bundled plugins and their settings."""
    config = load_config(REPO / "config.example.toml")
    assert config.server_url == "http://localhost:8000"
    assert config.session_cache_file == Path("~/.cache/roomz/session.json").expanduser()
    (bot,) = config.bots
    assert (bot.name, bot.display_name, bot.prefix) == ("helper", "HelperBot", "!")
    assert bot.plugins == ["help", "echo", "dice", "greeter", "reminders", "poll"]
    assert (bot.flood_burst, bot.flood_per_second, bot.flood_queue) == (3, 1.0, 20)
    assert (config.reconnect_max_delay, bot.reconnect_max_delay) == (60.0, None)
    assert bot.reply_errors is True
    assert config.plugin_settings["dice"] == {"max_dice": 20, "max_sides": 1000}
    assert config.plugin_settings["reminders"] == {"max_pending": 25, "max_days": 365}


async def test_the_example_configs_bot_builds_with_every_plugin(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its bot loads every plugin without a warning and knows every bundled command."""
    caplog.set_level(logging.WARNING)
    config = load_config(REPO / "config.example.toml")
    bot = build_bot(config, config.bots[0], data_dir=tmp_path)
    assert [p.name for p in bot.plugins] == ["help", "echo", "dice", "greeter", "reminders",
                                             "poll"]
    assert {c.name for c in bot.commands} == {"help", "echo", "roll", "remind", "reminders",
                                              "unremind", "poll"}
    assert caplog.records == []


def test_variables_are_substituted_from_the_environment(tmp_path: Path) -> None:
    """``${VAR}`` in any string, in any table, is replaced by the environment's value."""
    path = write(tmp_path, '''
[client]
server_url = "${ROOMZ_TEST_URL}"

[[bots]]
name = "${OWNER}-bot"
display_name = "Bot of ${OWNER}"
plugins = ["greeter", "${SECOND_PLUGIN}"]

[plugins.greeter]
greeting = "Hi {name}, from ${OWNER}"
''')
    env = {"ROOMZ_TEST_URL": NOWHERE, "OWNER": "ada", "SECOND_PLUGIN": "dice"}
    config = load_config(path, env=env)
    assert config.server_url == NOWHERE
    assert (config.bots[0].name, config.bots[0].display_name) == ("ada-bot", "Bot of ada")
    assert config.bots[0].plugins == ["greeter", "dice"]
    assert config.plugin_settings["greeter"]["greeting"] == "Hi {name}, from ada"


def test_variables_come_from_the_process_environment_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``env=``, ``os.environ`` is used."""
    monkeypatch.setenv("ROOMZ_TEST_URL", NOWHERE)
    path = write(tmp_path, '[client]\nserver_url = "${ROOMZ_TEST_URL}"\n')
    assert load_config(path).server_url == NOWHERE


# Each mistake, what the message must name besides the file.
MISTAKES = {
    "unset variable": ('[client]\nserver_url = "${ROOMZ_TEST_UNSET}"\n',
                       ["server_url", "ROOMZ_TEST_UNSET", "not set"]),
    "bad TOML": ('[client]\nserver_url = "http://x"\nsession_cache_file = = 1\n',
                 ["not valid TOML", "line 3"]),
    "duplicate bot names": ('[[bots]]\nname = "twin"\nplugins = []\n'
                            '[[bots]]\nname = "twin"\nplugins = []\n', ["'twin'", "differ"]),
    "bot without a name": ('[[bots]]\nplugins = ["dice"]\n', ["[[bots]] #1", "missing key 'name'"]),
    "plugins not a list": ('[[bots]]\nname = "b"\nplugins = "dice"\n',
                           ["[[bots]] 'b'", "plugins", "list"]),
    "wrong type of a bot key": ('[[bots]]\nname = "b"\nplugins = []\nflood_burst = "3"\n',
                                ["flood_burst", "expected a whole number", "'3'"]),
    "flood burst of 0": ('[[bots]]\nname = "b"\nplugins = []\nflood_burst = 0\n',
                         ["[[bots]] 'b' flood_burst", "a whole number above 0", "got 0"]),
    "flood rate of nan": ('[[bots]]\nname = "b"\nplugins = []\nflood_per_second = nan\n',
                          ["flood_per_second", "a number above 0", "nan"]),
    "flood queue below 1": ('[[bots]]\nname = "b"\nplugins = []\nflood_queue = -1\n',
                            ["flood_queue", "a whole number above 0", "-1"]),
    "reply errors not true or false": ('[[bots]]\nname = "b"\nplugins = []\n'
                                       'reply_errors = "yes"\n',
                                       ["[[bots]] 'b' reply_errors", "expected true or false",
                                        "got str 'yes'"]),
    "reconnect cap of 0": ('[client]\nreconnect_max_delay = 0\n',
                           ["[client] reconnect_max_delay", "a number above 0", "got 0"]),
    "bot reconnect cap not a number": ('[[bots]]\nname = "b"\nplugins = []\n'
                                       'reconnect_max_delay = "1 min"\n',
                                       ["[[bots]] 'b' reconnect_max_delay", "expected a number",
                                        "'1 min'"]),
    "bot reconnect cap of inf": ('[[bots]]\nname = "b"\nplugins = []\n'
                                 'reconnect_max_delay = inf\n',
                                 ["reconnect_max_delay", "a number above 0", "inf"]),
    "wrong type of a plugin setting": ('[[bots]]\nname = "b"\nplugins = ["dice"]\n'
                                       '[plugins.dice]\nmax_dice = "many"\n',
                                       ["[plugins.dice] max_dice", "expected a whole number",
                                        "'many'"]),
    "no dice to roll": ('[[bots]]\nname = "b"\nplugins = ["dice"]\n[plugins.dice]\nmax_dice = 0\n',
                        ["[plugins.dice] max_dice", "expected a whole number >= 1", "got int 0"]),
    "a poll open no time": ('[[bots]]\nname = "b"\nplugins = ["poll"]\n[plugins.poll]\n'
                            'seconds = 0.5\n',
                            ["[plugins.poll] seconds", "expected a number >= 1", "got float 0.5"]),
    "reminders for no days": ('[[bots]]\nname = "b"\nplugins = ["reminders"]\n'
                              '[plugins.reminders]\nmax_days = -1\n',
                              ["[plugins.reminders] max_days", ">= 1", "got int -1"]),
    "missing plugin setting": (f'[[bots]]\nname = "b"\nplugins = ["{WEATHER}"]\n'
                               f'[plugins."{WEATHER}"]\nunits = "imperial"\n',
                               [WEATHER, "missing key 'city'", "a string"]),
    "unknown plugin": ('[[bots]]\nname = "b"\nplugins = ["dice", "dcie"]\n',
                       ["'dcie'"]),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
async def test_each_mistake_is_one_clear_config_error(tmp_path: Path, mistake: str) -> None:
    """One ConfigError, one line, naming the file, the key or line, and what was expected."""
    text, expected = MISTAKES[mistake]
    path = write(tmp_path, f'[client]\nsession_cache_file = "{tmp_path}/s.json"\n' + text
                 if not text.startswith("[client]") else text)
    message = config_error(path, env={})
    assert "\n" not in message
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """No such file: a ConfigError saying so."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


async def test_unknown_keys_are_warned_about_and_the_rest_still_loads(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Typos in key names are warnings naming file, key and the known keys; the config works."""
    path = write(tmp_path, '''
bot = "typo of bots"

[client]
sever_url = "http://127.0.0.1:9"

[[bots]]
name = "b"
plugins = ["dice"]
prefx = "?"

[plugins.dice]
max_sidez = 12
''')
    caplog.set_level(logging.WARNING)
    config = load_config(path)
    bot = build_bot(config, config.bots[0], data_dir=tmp_path / "data")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for key, known in [("'bot'", "bots"), ("'sever_url'", "server_url"), ("'prefx'", "prefix"),
                       ("'max_sidez'", "max_sides")]:
        assert any(key in w and known in w and str(path) in w for w in warnings), \
            f"no warning about {key}: {warnings}"
    assert bot.prefix == "!"
    assert [p.name for p in bot.plugins] == ["help", "dice"]


def test_settings_for_a_plugin_no_bot_loads_are_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``[plugins.dcie]`` (a typo) or settings of a plugin left out of every bot would be
    read by nobody: a warning names the table and the plugins that are loaded. A file
    plugin's table goes by the file's name and is not warned about."""
    path = write(tmp_path, '''
[[bots]]
name = "b"
plugins = ["dice", "./quotes.py"]

[plugins.dcie]
max_dice = 3

[plugins.quotes]
max_quotes = 5
''')
    caplog.set_level(logging.WARNING)
    load_config(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}: [plugins.dcie]: no bot loads a plugin named 'dcie' (did you "
                        "mean 'dice'?), so nothing reads these settings"]


# -- the same mistakes through the command line ---------------------------------------------


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_roomz_cli_headless_exits_2_with_one_line_for_a_bad_config(tmp_path: Path,
                                                                   mistake: str) -> None:
    """``roomz-cli --headless --config BAD``: exit status 2, one line on stderr, no traceback."""
    text, expected = MISTAKES[mistake]
    path = write(tmp_path, f'[client]\nserver_url = "{NOWHERE}"\n'
                           f'session_cache_file = "{tmp_path}/s.json"\n' + text
                 if not text.startswith("[client]") else text)
    done = subprocess.run([ROOMZ_CLI, "--headless", "--config", str(path)], capture_output=True,
                          text=True, timeout=20, check=False, cwd=REPO)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("roomz-cli: ") and str(path) in lines[0]
    assert all(part in lines[0] for part in expected), lines[0]


@pytest.mark.parametrize(("plugin", "expected"), [
    ("./quotes.txt", "is not a .py file"),
    ("./quotes", "is a folder without an __init__.py"),
    ("./socket.py", "is not a .py file"),
])
def test_a_plugin_path_that_is_no_python_file_is_one_line(tmp_path: Path, plugin: str,
                                                          expected: str) -> None:
    """A text file, a folder without ``__init__.py``, a named pipe called ``.py``:
    ``roomz-cli --headless`` exits 2 with one line naming the bot, the plugin, the path and
    what a plugin path must be (a text file was an AssertionError traceback)."""
    (tmp_path / "quotes.txt").write_text("not python\n")
    (tmp_path / "quotes").mkdir()
    os.mkfifo(tmp_path / "socket.py")
    path = write(tmp_path, f'[client]\nserver_url = "{NOWHERE}"\n'
                           f'session_cache_file = "{tmp_path}/s.json"\n'
                           f'[[bots]]\nname = "b"\nplugins = ["dice", "{plugin}"]\n')
    message = config_error(path)
    done = subprocess.run([ROOMZ_CLI, "--headless", "--config", str(path)], capture_output=True,
                          text=True, timeout=20, check=False, cwd=REPO)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines == [f"roomz-cli: {message}"], done.stderr
    for part in (str(path), "[[bots]] 'b' plugins", repr(plugin), expected,
                 "expected a .py file or a folder with an __init__.py"):
        assert part in message, f"{part!r} not in {message!r}"


def test_bots_never_give_up_and_wait_at_most_their_reconnect_max_delay(tmp_path: Path) -> None:
    """``[client] reconnect_max_delay`` caps every bot's waits between attempts, unless a bot
    has its own; without either, 60 s. Bots' clients never stop trying."""
    path = write(tmp_path, f'''
[client]
server_url = "{NOWHERE}"
reconnect_max_delay = 20

[[bots]]
name = "patient"
plugins = []

[[bots]]
name = "eager"
plugins = []
reconnect_max_delay = 0.5
''')
    config = load_config(path)
    patient, eager = (build_bot(config, bot, data_dir=tmp_path) for bot in config.bots)
    assert (patient.client.reconnect_delay, patient.client.reconnect_delay_max) == (1.0, 20.0)
    assert (eager.client.reconnect_delay, eager.client.reconnect_delay_max) == (0.5, 0.5)
    assert patient.client.max_reconnect_attempts is eager.client.max_reconnect_attempts is None
    default = load_config(write(tmp_path, '[[bots]]\nname = "b"\nplugins = []\n'))
    assert default.reconnect_max_delay_of(default.bots[0]) == 60.0


# -- settings of any type a plugin declares -------------------------------------------------

TRIPS = "tests.bots.sample_plugins.trips"
TRIPS_CONFIG = f'''
[client]
server_url = "{NOWHERE}"

[[bots]]
name = "b"
plugins = ["{TRIPS}"]

[plugins."{TRIPS}"]
tags = ["sea", "hills"]
pace = "fast"
units = "imperial"
home = {{ city = "Bergen", nights = 0 }}

[[plugins."{TRIPS}".stops]]
city = "Lyon"
nights = 2

[[plugins."{TRIPS}".stops]]
city = "Turin"
'''


def test_settings_of_any_declared_type_reach_the_plugin(tmp_path: Path) -> None:
    """Lists, nested dataclasses (and lists of them), Literal, Enum, Optional and defaults:
    the plugin gets its ``Settings`` built of those types."""
    from roomz_bots.plugins import load_plugin, settings_for

    from .sample_plugins.trips import Stop, Units

    config = load_config(write(tmp_path, TRIPS_CONFIG))
    build_bot(config, config.bots[0], data_dir=tmp_path / "data")
    settings = settings_for(load_plugin(TRIPS), config.plugin_settings[TRIPS])
    assert settings.stops == [Stop("Lyon", 2), Stop("Turin", 1)]
    assert settings.home == Stop("Bergen", 0)
    assert settings.tags == ["sea", "hills"]
    assert (settings.pace, settings.units, settings.budget) == ("fast", Units.IMPERIAL, None)


# Each wrong value of a typed setting, and what its one line must say.
WRONG_SETTINGS = {
    "list item": ('tags = ["sea", 3]', ["tags[1]", "expected a string", "got int 3"]),
    "list": ('tags = "sea"', ["tags", "expected a list of strings", "'sea'"]),
    "nested dataclass": ('home = { city = "Bergen", nights = "two" }',
                         ["home.nights", "expected a whole number", "'two'"]),
    "nested dataclass missing key": ("home = { nights = 2 }",
                                     ["home", "missing key 'city'", "a string"]),
    "item of a list of dataclasses": ('stops = [{ city = "Lyon" }, { city = 7 }]',
                                      ["stops[1].city", "expected a string", "got int 7"]),
    "Literal": ('pace = "medium"', ["pace", "expected one of 'slow', 'fast'", "'medium'"]),
    "Enum": ('units = "furlongs"', ["units", "expected one of 'metric', 'imperial'",
                                    "'furlongs'"]),
    "Optional": ('budget = "lots"', ["budget", "expected a number", "'lots'"]),
}


@pytest.mark.parametrize("mistake", sorted(WRONG_SETTINGS))
def test_a_wrong_typed_setting_is_one_line_naming_the_key(tmp_path: Path, mistake: str) -> None:
    """One ConfigError line: the file, ``[plugins.NAME] key``, what was expected, what was got."""
    line, expected = WRONG_SETTINGS[mistake]
    stops = "" if line.startswith("stops") else 'stops = [{ city = "Lyon" }]\n'
    path = write(tmp_path, f'[client]\nserver_url = "{NOWHERE}"\n'
                           f'[[bots]]\nname = "b"\nplugins = ["{TRIPS}"]\n'
                           f'[plugins."{TRIPS}"]\n{stops}{line}\n')
    message = config_error(path)
    assert "\n" not in message
    assert message.startswith(f"{path}: [plugins.{TRIPS}] ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
