"""Writing a plugin: commands from signatures, messages, replies, settings, stores, help, prefix."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from roomz_bots import Command, command, display_name_of
from roomz_bots.store import Store
from roomz_bots.testing import BotHarness

from .helpers import assert_no_reply, wait_until
from .sample_plugins import (
    JOURNAL,
    calc,
    counter,
    inspector,
    numbers,
    replier,
    second_roll,
    tally,
    weather,
)

# -- @command: name, aliases, usage, help -----------------------------------------------------


def test_command_takes_name_usage_and_help_from_the_function() -> None:
    """``@command`` names it after the function; its help is the docstring's first paragraph."""
    assert isinstance(calc.add, Command)
    assert (calc.add.name, calc.add.aliases) == ("add", ())
    assert calc.add.usage == "add <a> <b>"
    assert calc.add.help == "Add two whole numbers."


def test_command_name_aliases_and_generated_usage() -> None:
    """``@command("mul", aliases=[...])``: the name, every alias, optional arguments in brackets."""
    assert calc.multiply.name == "mul"
    assert calc.multiply.names == ("mul", "times", "x")
    assert calc.multiply.usage == "mul <a> [b]"
    assert calc.repeat.usage == "repeat <times> <text...>"
    assert calc.total.usage == "total [numbers...]"
    assert calc.shout.usage == "shout [text...]"
    assert calc.whoami.usage == "whoami"


def test_a_decorated_command_is_still_callable() -> None:
    """The function keeps working when called directly (for the plugin's own unit tests)."""
    assert calc.add(2, 3) == "2 + 3 = 5"


def test_a_command_with_an_unsupported_annotation_fails_when_declared() -> None:
    """Only str, int and float can be parsed from a chat line; anything else is refused at once."""
    with pytest.raises(TypeError, match="'when'"):
        @command
        def remind_at(when: datetime) -> str:
            """Never declared."""
            return str(when)


# -- arguments parsed by signature -----------------------------------------------------------

ANSWERS = [
    ("!add 2 3", "2 + 3 = 5"),
    ("!mul 1.5 4", "6"),
    ("!times 3", "6"),
    ("!x 2.5 -2", "-5"),
    ("!repeat 2 hello  big world", "hello  big world | hello  big world"),
    ("!total 1 2 3.5", "total 6.5 of 3"),
    ("!total", "total 0 of 0"),
    ("!shout", "HEY"),
    ("!shout one two", "ONE TWO"),
    ("!whoami", "tester@example.com"),
]


@pytest.mark.parametrize(("line", "answer"), ANSWERS)
async def test_arguments_are_parsed_from_the_signature(line: str, answer: str) -> None:
    """Words converted by annotation; keyword-only takes the rest, ``*args`` the words."""
    async with BotHarness([calc]) as chat:
        await chat.say(line)
        assert (await chat.reply()).text == answer


USAGES = [
    ("!add 2", "Usage: !add <a> <b> (missing b)"),
    ("!add two 3", "Usage: !add <a> <b> (a must be a whole number, not 'two')"),
    ("!add 1 2 3", "Usage: !add <a> <b> (unexpected '3')"),
    ("!add 1.5 2", "Usage: !add <a> <b> (a must be a whole number, not '1.5')"),
    ("!mul x", "Usage: !mul <a> [b] (a must be a number, not 'x')"),
    ("!repeat 2", "Usage: !repeat <times> <text...> (missing text)"),
    ("!repeat twice hi", "Usage: !repeat <times> <text...> (times must be a whole number, "
                         "not 'twice')"),
    ("!total 1 x", "Usage: !total [numbers...] (numbers must be a number, not 'x')"),
]


@pytest.mark.parametrize(("line", "usage"), USAGES)
async def test_wrong_arguments_are_answered_with_the_usage_line(line: str, usage: str) -> None:
    """Arguments that do not fit the signature get the usage line and the reason."""
    async with BotHarness([calc]) as chat:
        await chat.say(line)
        assert (await chat.reply()).text == usage


async def test_a_command_raising_usage_error_is_answered_with_its_usage() -> None:
    """A command that raises UsageError: the user gets the usage line with the reason."""
    async with BotHarness([calc]) as chat:
        await chat.say("!pick three")
        assert (await chat.reply()).text == "Usage: !pick <one|two> ('three' is neither)"
        await chat.say("!pick two")
        assert (await chat.reply()).text == "picked two"


async def test_a_line_that_is_no_known_command_gets_no_answer() -> None:
    """``!nosuch`` and a lone ``!`` are not ours: the bot stays quiet."""
    async with BotHarness([calc]) as chat:
        await chat.say("!nosuch 1 2")
        await chat.say("!")
        await chat.say("wow!")
        await assert_no_reply(chat)


async def test_two_plugins_with_one_command_name_are_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    """dice's ``!roll`` and another plugin's: the later plugin in the list answers, and a
    warning names the command and both plugins (it was silent)."""
    caplog.set_level(logging.WARNING)
    async with BotHarness(["dice", second_roll]) as chat:
        await chat.say("!roll")
        assert (await chat.reply()).text == "the second roll"
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "roomz_bots"]
    assert warnings == ["bot testbot: !roll of plugin second_roll hides dice's (the later "
                        "plugin in the list answers it)",
                        "bot testbot: !r of plugin second_roll hides dice's (the later "
                        "plugin in the list answers it)"]


async def test_a_command_returning_no_text_is_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    """``return a + b`` sends nothing (only text is sent), and a warning says why: nothing
    is lost silently."""
    caplog.set_level(logging.WARNING)
    async with BotHarness([numbers]) as chat:
        await chat.say("!plus 2 3")
        await assert_no_reply(chat)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "roomz_bots"]
    assert warnings == ["bot testbot: !plus of plugin numbers returned int 5, which is not "
                        "text: nothing was sent (return a str, or Markdown, Code or Diff)"]


# -- the Message object ----------------------------------------------------------------------


async def test_returning_what_reply_returned_is_no_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """``return await bot.reply(message, "done")``: the reply went out, and the
    acknowledgement returned with it is no cause for a warning."""
    caplog.set_level(logging.WARNING)
    async with BotHarness([replier]) as chat:
        await chat.say("!ack")
        assert (await chat.reply()).text.endswith("done")
        await assert_no_reply(chat)  # the command has returned by now
    assert [r.getMessage() for r in caplog.records if "not text" in r.getMessage()] == []


async def test_a_message_as_plugins_see_it() -> None:
    """Sender, label "Name (email)", unescaped text next to the raw content, id, aware timestamp."""
    async with BotHarness([inspector]) as chat:
        assert chat.user is not None
        await chat.user.set_display_name("Alice")
        ack = await chat.say("<b>hi</b> & bye")
        await wait_until(lambda: bool(JOURNAL.of("inspector")), what="the message")
        message = JOURNAL.of("inspector")[0].args["message"]

    assert message.email == "tester@example.com"
    assert message.display_name == "Alice"
    assert message.label == "Alice (tester@example.com)"
    assert message.text == "<b>hi</b> & bye"
    assert message.content == "&lt;b&gt;hi&lt;/b&gt; &amp; bye"
    assert message.id == ack["message_id"]
    assert message.timestamp.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - message.timestamp) < timedelta(seconds=30)


async def test_the_label_of_a_sender_without_display_name_is_the_email() -> None:
    """No display name: ``label`` is the email alone."""
    async with BotHarness([inspector]) as chat:
        await chat.say("plain")
        await wait_until(lambda: bool(JOURNAL.of("inspector")), what="the message")
    message = JOURNAL.of("inspector")[0].args["message"]
    assert (message.display_name, message.label) == (None, "tester@example.com")


async def test_reply_addresses_the_sender_and_send_does_not() -> None:
    """``reply()`` prefixes the sender's display name; ``send()`` posts the text as it is."""
    async with BotHarness([inspector]) as chat:
        assert chat.user is not None
        await chat.user.set_display_name("Alice")
        await chat.say("!both")
        assert (await chat.reply()).text == "Alice: via reply"
        assert (await chat.reply()).text == "via send"


# -- settings --------------------------------------------------------------------------------


async def test_a_plugin_reads_its_settings() -> None:
    """The ``Settings`` dataclass is filled from the plugin's section, defaults for the rest."""
    async with BotHarness([weather], settings={"weather": {"city": "Oslo", "days": 5}}) as chat:
        await chat.say("!forecast")
        assert (await chat.reply()).text == "5 days of metric weather in Oslo"


# -- the persistent store --------------------------------------------------------------------


async def test_each_plugin_has_a_store_that_survives_a_restart(tmp_path: Path) -> None:
    """Counts go on after ``restart_bot()``; two plugins using the same key do not share it."""
    async with BotHarness([counter, tally], data_dir=tmp_path) as chat:
        for expected in ("count 1", "count 2"):
            await chat.say("!count")
            assert (await chat.reply()).text == expected
        await chat.say("!tally")
        assert (await chat.reply()).text == "tally 10"

        await chat.restart_bot()

        await chat.say("!count")
        assert (await chat.reply()).text == "count 3"
        await chat.say("!tally")
        assert (await chat.reply()).text == "tally 20"

    stores = sorted(p.name for p in (tmp_path / "testbot").iterdir())
    assert stores == ["_bot.sqlite3", "counter.sqlite3", "tally.sqlite3"]  # _bot: its cursor
    assert (tmp_path / "testbot" / "counter.sqlite3").read_bytes().startswith(b"SQLite format 3")


# -- command prefix and help -----------------------------------------------------------------


async def test_the_command_prefix_is_configurable() -> None:
    """With prefix ``?``: ``?add`` is answered, ``!add`` is not, usage lines show ``?``."""
    async with BotHarness([calc], prefix="?") as chat:
        await chat.say("!add 1 2")
        await assert_no_reply(chat)
        await chat.say("?add 1 2")
        assert (await chat.reply()).text == "1 + 2 = 3"
        await chat.say("?add 1")
        assert (await chat.reply()).text == "Usage: ?add <a> <b> (missing b)"


async def test_a_longer_prefix_works_too() -> None:
    """A two-character prefix such as ``!!``: ``!add`` is no command, ``!!add`` is."""
    async with BotHarness([calc], prefix="!!") as chat:
        await chat.say("!add 1 2")
        await assert_no_reply(chat)
        await chat.say("!!add 1 2")
        assert (await chat.reply()).text == "1 + 2 = 3"


async def test_help_lists_every_command_with_its_usage() -> None:
    """``!help`` lists every command of every plugin, each with its usage and help line, as
    a Markdown list."""
    async with BotHarness(["echo", "dice", "reminders", calc]) as chat:
        assert chat.bot is not None
        commands = list(chat.bot.commands)
        await chat.say("!help")
        reply = await chat.reply()

    assert reply.content_type == "text/markdown"
    lines = reply.text.splitlines()
    assert lines[:2] == ["**Commands**", ""]
    assert len(lines) == 2 + len(commands) == 2 + 13
    for c in commands:
        assert f"- `!{c.usage}`: {c.help}" in lines
    assert "- `!roll [NdM]`: Roll dice: 2d6 is two six-sided dice." in lines
    assert "- `!remind <duration> <text>`: Remind you of something later: !remind 10m tea." \
        in lines


async def test_help_about_one_command_shows_usage_aliases_and_help() -> None:
    """``!help roll`` (or ``!help !r``) explains one command; an unknown one is said so."""
    async with BotHarness(["dice"], prefix="?") as chat:
        await chat.say("?help roll")
        assert (await chat.reply()).text == \
            "?roll [NdM] (also ?r): Roll dice: 2d6 is two six-sided dice."
        await chat.say("?help ?r")
        assert (await chat.reply()).text.startswith("?roll [NdM]")
        await chat.say("?help nope")
        assert (await chat.reply()).text == "No command ?nope. ?help lists them all."


def test_display_names_of_wire_users_are_unescaped() -> None:
    """The server keeps display names HTML-escaped; plugins get them as the user typed them."""
    assert display_name_of({"email": "t@example.com", "display_name": "Tom &amp; Jerry"}) == \
        "Tom & Jerry"
    assert display_name_of({"email": "t@example.com", "display_name": None}) is None
    assert display_name_of(None) is None


def test_store_items_by_prefix_match_it_exactly(tmp_path: Path) -> None:
    """``items(prefix)`` keeps case and treats % and _ as the characters they are."""
    with contextlib.closing(Store(tmp_path / "plugin.sqlite3")) as store:
        for key in ("remind:1", "REMIND:2", "remind_x", "a%b", "axb"):
            store[key] = key
        assert [k for k, _ in store.items("remind:")] == ["remind:1"]
        assert [k for k, _ in store.items("a%")] == ["a%b"]
        assert [k for k, _ in store.items("remind_")] == ["remind_x"]


def test_store_refuses_what_would_not_come_back_as_written(tmp_path: Path) -> None:
    """JSON keeps dict keys as text: ``{5: 1}`` would come back as ``{"5": 1}`` and
    ``counts.get(5)`` would find nothing after a restart. Such a write, a key that is not
    text, and a value JSON cannot hold raise TypeError naming the key; the old value stays."""
    with contextlib.closing(Store(tmp_path / "plugin.sqlite3")) as store:
        store["counts"] = {"5": 1}
        refused = [("counts", {5: 2}, "not 5 (int)"), ("deep", [{"a": {1.5: 3}}], "(float)"),
                   ("tags", {"x", "y"}, "set"), ("none", {None: 1}, "not None (NoneType)"),
                   (5, "x", "keys must be text, not 5 (int)")]
        for key, value, why in refused:
            with pytest.raises(TypeError, match=re.escape(why)) as raised:
                store[key] = value  # type: ignore[index]
            assert repr(key) in str(raised.value)
        assert store["counts"] == {"5": 1} and len(store) == 1
        store["nested"] = {"a": [1, {"b": None}], "c": 1.5}
        assert store["nested"] == {"a": [1, {"b": None}], "c": 1.5}


def test_store_rename_moves_a_value_in_one_step(tmp_path: Path) -> None:
    """``rename(key, new_key)`` moves the value, replacing one under ``new_key``; a key
    that is not there is a KeyError naming it."""
    with contextlib.closing(Store(tmp_path / "plugin.sqlite3")) as store:
        store["old"], store["new"] = {"n": 1}, "replaced"
        store.rename("old", "new")
        assert ("old" in store, store["new"], len(store)) == (False, {"n": 1}, 1)
        with pytest.raises(KeyError, match="'gone'"):
            store.rename("gone", "new")


def test_store_write_survives_the_process_killed_right_after_it(tmp_path: Path) -> None:
    """A write is the store's once it returns: a process killed (SIGKILL) right after it
    leaves it for the next run. The store keeps a write-ahead log, which spares each write
    the fsyncs of SQLite's default journal (about 0.6 ms, four of them per bot reply)."""
    path = tmp_path / "plugin.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from roomz_bots.store import Store\n"
         f"Store(__import__('pathlib').Path({str(path)!r}))['said'] = {{'n': 1}}\n"
         "print('written', flush=True)\n"
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "written\n"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        writer.kill()
    with contextlib.closing(Store(path)) as store:
        assert store["said"] == {"n": 1}
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
