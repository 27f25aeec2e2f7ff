"""Every chat event reaches every plugin, through plain functions and coroutines alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from roomz.server.local import LocalServer
from roomz_bots import Message, PluginBot
from roomz_bots.testing import BotHarness

from .conftest import BotFactory
from .helpers import wait_until
from .sample_plugins import JOURNAL, Entry, recorder_async, recorder_sync

RECORDERS = ("recorder_sync", "recorder_async")


async def called(what: str, times: int = 1) -> None:
    """Wait until both recorder plugins have run ``what`` at least ``times`` times."""
    await wait_until(lambda: all(len(JOURNAL.of(p, what)) >= times for p in RECORDERS),
                     what=f"{what} x{times} in both recorders; journal: "
                          f"{[(e.plugin, e.what) for e in JOURNAL.entries]}")


async def test_every_event_reaches_every_plugin(watchers: Callable[..., Any]) -> None:
    """startup, authenticated, message, joined, renamed, left, disconnect, shutdown: all arrive."""
    async with BotHarness([recorder_sync, recorder_async]) as chat:
        await called("startup")
        await called("on_authenticated")

        ack = await chat.say("hello bots")
        await called("on_message")

        token = (await chat.server.request_link(chat.email)).token
        other = await watchers(chat.server.url, token)
        await called("on_user_joined")

        await other.client.set_display_name("Other")
        await called("on_display_name_changed")

        await other.client.disconnect()
        await called("on_user_left")
        before_drop = list(JOURNAL.entries)  # the drop and return bring more joins and leaves

        await chat.drop_connection()
        await called("on_disconnect")

        await chat.restore_connection()
        await called("on_authenticated", times=2)
    await called("shutdown")

    for plugin in RECORDERS:
        def of(what: str, plugin: str = plugin) -> list[Entry]:
            return [e for e in before_drop if (e.plugin, e.what) == (plugin, what)]

        (message,) = [e.args["message"] for e in of("on_message")]
        assert isinstance(message, Message)
        assert (message.text, message.id) == ("hello bots", ack["message_id"])
        (joined,) = of("on_user_joined")
        assert joined.args["event"]["user"]["email"] == chat.email
        assert joined.args["event"]["total_connections"] == 3
        (renamed,) = of("on_display_name_changed")
        assert renamed.args["event"]["display_name"] == "Other"
        (left,) = of("on_user_left")
        assert left.args["event"]["remaining_connections"] == 2
        assert all(e.args["event"]["user"]["email"] == chat.email
                   for e in JOURNAL.of(plugin, "on_authenticated"))
        assert len(JOURNAL.of(plugin, "on_disconnect")) == 2  # the drop, then the stop
        assert len(JOURNAL.of(plugin, "startup")) == len(JOURNAL.of(plugin, "shutdown")) == 1


async def test_hooks_receive_only_the_arguments_they_name() -> None:
    """A hook naming only ``message`` or ``event`` gets just that; ``bot`` is its plugin's view."""
    async with BotHarness([recorder_sync, recorder_async]) as chat:
        await chat.say("names")
        await called("on_message")
    await called("shutdown")

    assert set(JOURNAL.of("recorder_sync", "on_message")[0].args) == {"message"}
    assert set(JOURNAL.of("recorder_sync", "on_authenticated")[0].args) == {"event"}
    assert JOURNAL.of("recorder_sync", "shutdown")[0].args == {}
    bot = JOURNAL.of("recorder_async", "on_message")[0].args["bot"]
    assert isinstance(bot, PluginBot)
    assert (bot.name, bot.plugin.name, bot.prefix) == ("testbot", "recorder_async", "!")
    assert JOURNAL.of("recorder_sync", "startup")[0].args["bot"].plugin.name == "recorder_sync"


async def test_on_error_when_reconnect_attempts_run_out(server: LocalServer,
                                                        make_bot: BotFactory) -> None:
    """The server stays away: after the last attempt every plugin hears the 503 error."""
    token = (await server.request_link("tester@example.com")).token
    bot = await make_bot("fragile", server.url, token, [recorder_sync, recorder_async],
                         client={"reconnect_delay": 0.05, "max_reconnect_attempts": 2})

    await server.server.stop()
    await called("on_disconnect")
    await called("on_error")

    for plugin in RECORDERS:
        (error,) = JOURNAL.of(plugin, "on_error")
        assert error.args["event"]["code"] == 503
        assert "2 attempts" in error.args["event"]["error"]
    assert not bot.client.connected


async def test_commands_registered_by_a_plain_register_commands_hook_are_answered() -> None:
    """``register_commands`` as a plain function: its command is listed and answered."""
    async with BotHarness([recorder_sync]) as chat:
        assert chat.bot is not None
        assert chat.bot.find_command("sync_dyn") is not None
        await chat.say("!sync_dyn")
        assert (await chat.reply()).text == "sync dyn ok"


async def test_commands_registered_by_a_coroutine_register_commands_hook_are_answered() -> None:
    """``register_commands`` as a coroutine: its command is listed and answered too."""
    async with BotHarness([recorder_async]) as chat:
        assert chat.bot is not None
        assert chat.bot.find_command("async_dyn") is not None
        await chat.say("!async_dyn")
        assert (await chat.reply()).text == "async dyn ok"
