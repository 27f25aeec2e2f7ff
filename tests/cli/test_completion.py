"""Completion with descriptions, persistent history, and suggestions from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory

from roomz.cli.app import COMMANDS, ChatApp
from roomz.cli.history import history_file
from roomz.server.local import LocalServer

from .helpers import RIGHT, open_terminal, text_of, write_config

EMAIL = "alice@example.com"


def complete(app: ChatApp, text: str) -> list[Completion]:
    """What the terminal's completer offers with ``text`` before the cursor."""
    completer = app.session.completer
    assert completer is not None
    return list(completer.get_completions(Document(text), CompleteEvent(text_inserted=True)))


def offered(completions: list[Completion]) -> dict[str, str]:
    """``{completion text: its description}``."""
    return {c.text: text_of(c.display_meta) for c in completions}


def history_with(path: Path, *lines: str) -> FileHistory:
    """A history file holding ``lines``, as earlier runs would have left it."""
    history = FileHistory(str(path))
    for line in lines:
        history.store_string(line)
    return FileHistory(str(path))


async def test_every_command_is_completed_with_its_description(server: LocalServer,
                                                               tmp_path: Path) -> None:
    """'/' offers every slash command, each with its usage and a description."""
    async with open_terminal(server.url, tmp_path) as term:
        completions = complete(term.app, "/")
        assert offered(completions) == {f"/{c.name}": c.help for c in COMMANDS}
        assert set(offered(completions)) == {
            "/login", "/token", "/reconnect", "/name", "/logout", "/quit", "/help", "/bots",
            "/plugins", "/reload", "/bot", "/who", "/expand"}
        assert all(text_of(c.display_meta) for c in completions)
        assert {text_of(c.display) for c in completions} >= {"/login <email>",
                                                             "/reload <plugin>"}


@pytest.mark.parametrize(("typed", "expected"), [
    ("/re", {"/reload", "/reconnect"}),
    ("/rel", {"/reload"}),
    ("/bo", {"/bot", "/bots"}),
    ("/lo", {"/login", "/logout"}),
    ("/q", {"/quit"}),
    ("/zz", set()),
    ("hello", set()),
])
async def test_command_names_complete_from_a_prefix(server: LocalServer, tmp_path: Path,
                                                    typed: str, expected: set[str]) -> None:
    """A prefix offers the commands it starts, replacing what was typed; plain text offers none."""
    async with open_terminal(server.url, tmp_path) as term:
        completions = complete(term.app, typed)
        assert set(offered(completions)) == expected
        assert all(c.start_position == -len(typed) for c in completions)


async def test_login_completes_emails_used_before(server: LocalServer, tmp_path: Path) -> None:
    """'/login ' offers the emails of earlier /login lines in the history, and only those."""
    history = history_with(tmp_path / "history", "/login alice@example.com", "hello there",
                           "/login bob@example.com", "/login alice@example.com", "/name Al")
    async with open_terminal(server.url, tmp_path, history=history) as term:
        await term.prompt_ready()
        completions = complete(term.app, "/login ")
        assert offered(completions) == {"alice@example.com": "used before",
                                        "bob@example.com": "used before"}
        assert set(offered(complete(term.app, "/login b"))) == {"bob@example.com"}
        assert complete(term.app, "/login b")[0].start_position == -1
        assert complete(term.app, "/token ") == []


async def test_reload_completes_plugin_names_and_bot_its_arguments(server: LocalServer,
                                                                   tmp_path: Path) -> None:
    """'/reload ' offers the running plugins; '/bot ' start|stop, then the config's bot names."""
    config = write_config(tmp_path, server.url)
    async with open_terminal(server.url, tmp_path, config=config) as term:
        assert set(offered(complete(term.app, "/bot "))) == {"start", "stop"}
        assert offered(complete(term.app, "/bot start ")) == {"helper": "stopped"}
        await term.sign_in(server, EMAIL)
        await term.wait_for("Bot helper running")
        plugins = offered(complete(term.app, "/reload "))
        assert set(plugins) == {"help", "dice", "echo"}
        assert all(meta for meta in plugins.values())
        assert set(offered(complete(term.app, "/reload d"))) == {"dice"}
        assert offered(complete(term.app, "/bot stop ")) == {"helper": "running"}
        assert set(offered(complete(term.app, "/bot st"))) == {"start", "stop"}


async def test_tab_completes_in_the_prompt(server: LocalServer, tmp_path: Path) -> None:
    """Typing '/hel' then Tab and Enter runs /help."""
    async with open_terminal(server.url, tmp_path) as term:
        await term.prompt_ready()
        term.type("/hel")
        buffer = term.app.session.default_buffer
        await term.until(lambda: buffer.complete_state is not None
                         and bool(buffer.complete_state.completions),
                         "completions while typing")
        term.type("\t")
        await term.until(lambda: term.typed == "/help", "Tab to complete /help")
        await term.command("", "Commands:")


async def test_history_is_kept_in_a_file_across_runs(server: LocalServer, tmp_path: Path) -> None:
    """What is typed goes to the history file; the next run suggests it (Right arrow takes it)."""
    path = tmp_path / "history"
    async with open_terminal(server.url, tmp_path, history=FileHistory(str(path))) as term:
        await term.command(f"/login {EMAIL}", "Sign-in link sent")
        assert await term.exit_status("/quit\r") == 0
    assert f"+/login {EMAIL}" in path.read_text(encoding="utf-8")
    async with open_terminal(server.url, tmp_path, history=FileHistory(str(path))) as again:
        assert isinstance(again.app.session.auto_suggest, AutoSuggestFromHistory)
        await again.prompt_ready()
        again.type("/lo")
        buffer = again.app.session.default_buffer
        await again.until(lambda: buffer.suggestion is not None, "a suggestion from history")
        assert buffer.suggestion is not None and buffer.suggestion.text == f"gin {EMAIL}"
        again.type(RIGHT)
        await again.until(lambda: again.typed == f"/login {EMAIL}",
                          "Right arrow to accept the suggestion")
        start = again.mark()
        again.type("\r")
        await again.wait_for(f"Sign-in link sent to {EMAIL}", start=start)
        assert set(offered(complete(again.app, "/login "))) == {EMAIL}


def test_default_history_lives_in_the_user_state_dir(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """roomz-cli keeps its history in $XDG_STATE_HOME/roomz/history (created if missing)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    history = history_file()
    assert isinstance(history, FileHistory)
    assert Path(str(history.filename)) == tmp_path / "state" / "roomz" / "history"
    assert (tmp_path / "state" / "roomz").is_dir()
