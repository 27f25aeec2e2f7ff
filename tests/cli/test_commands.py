"""Slash commands: usage answers, /help, and the one-line answers to mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomz.cli.app import COMMANDS
from roomz.server.local import LocalServer

from .helpers import open_terminal, style_of, text_of


@pytest.mark.parametrize(("typed", "usage"), [
    ("/login", "Usage: /login <email>"),
    ("/token", "Usage: /token <token>"),
    ("/reload", "Usage: /reload <plugin>"),
    ("/bot", "Usage: /bot start|stop <name>"),
    ("/bot start", "Usage: /bot start|stop <name>"),
    ("/bot jump helper", "Usage: /bot start|stop <name>"),
    ("/login   ", "Usage: /login <email>"),
])
async def test_missing_arguments_get_a_one_line_usage(server: LocalServer, tmp_path: Path,
                                                      typed: str, usage: str) -> None:
    """A command without its arguments answers with its usage, on one line."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.wait_for("Not signed in")
        line = await term.command(typed, "Usage")
        assert text_of(line)[9:] == usage
        assert "\n" not in text_of(line)
        assert style_of(line, "Usage") == "class:warning"
        assert not term.task.done()


async def test_unknown_command_gets_a_one_line_answer(server: LocalServer,
                                                      tmp_path: Path) -> None:
    """'/frobnicate' is not sent: one line says it is unknown and points to /help."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.sign_in(server, "alice@example.com")
        line = await term.command("/frobnicate now", "Unknown command")
        assert "/frobnicate" in text_of(line) and "/help" in text_of(line)
        assert "\n" not in text_of(line)
        await term.command("marker", ": marker$")
        assert term.find("frobnicate now$") is None


async def test_help_lists_every_command(server: LocalServer, tmp_path: Path) -> None:
    """/help names every command with its arguments and what it does, and the keys."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.command("/help", "Commands:")
        shown = text_of(line)
        for name in ("login", "token", "reconnect", "name", "logout", "quit", "help", "bots",
                     "plugins", "reload", "bot"):
            assert f"/{name}" in shown
        for command in COMMANDS:
            assert command.usage in shown and command.help in shown
        assert "Alt+Enter" in shown and "Ctrl-D" in shown and "Ctrl-C" in shown


async def test_sending_while_signed_out_says_how_to_sign_in(server: LocalServer,
                                                             tmp_path: Path) -> None:
    """Typing a message before signing in: what was typed, with why it did not go and the
    fix; nothing crashes."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.wait_for("Not signed in")
        line = await term.command("hello?", "Not sent")
        assert text_of(line)[9:] == "Not sent: not signed in: /login you@example.com first — hello?"
        assert style_of(line, "Not sent") == "class:error"
        assert not term.task.done()


async def test_name_while_signed_out_is_a_warning(server: LocalServer, tmp_path: Path) -> None:
    """/name before signing in: a warning line saying why and the fix, not a crash."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.wait_for("Not signed in")
        line = await term.command("/name Alice", "Name not changed")
        assert text_of(line)[9:] == ("Name not changed: not signed in: /login you@example.com "
                                     "first.")
        assert style_of(line, "Name not changed") == "class:warning"
        assert not term.task.done()


async def test_bots_without_a_config_says_so(server: LocalServer, tmp_path: Path) -> None:
    """/bots and /plugins without --config: say there are none and how to host some."""
    async with open_terminal(server.url, tmp_path) as term:
        line = await term.command("/bots", "No bots")
        assert "--config" in text_of(line)
        await term.command("/plugins", "No plugins")
        line = await term.command("/reload dice", "No plugin 'dice' here")
        assert "--config" in text_of(line)


async def test_bot_start_without_a_config_is_a_warning_not_a_crash(server: LocalServer,
                                                                   tmp_path: Path) -> None:
    """/bot start NAME without --config answers with a warning; the terminal keeps running."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.wait_for("Not signed in")
        line = await term.command("/bot start helper", "helper")
        assert style_of(line, "helper") == "class:warning"
        assert not term.task.done()
        line = await term.command("/bot stop helper", "helper")
        assert style_of(line, "helper") == "class:warning"
