"""``ChatApp``: the terminal. One prompt, the user's connection, and the bots it hosts."""

from __future__ import annotations

import html
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import merge_completers
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout

from roomz import AsyncClient, ClientError, NotSupportedError
from roomz.content import PLAIN
from roomz.durations import duration
from roomz.limits import MAX_MESSAGE_LENGTH, split_text
from roomz.message import Message, parse_time
from roomz.recent_ids import RecentIds
from roomz.send_once import SEND_ONCE
from roomz.session_cache import default_session_file
from roomz_bots.bot import Bot
from roomz_bots.config import Config, ConfigError
from roomz_bots.host import BotHost, BotState, HostedBot, HostError, ReloadFailed
from roomz_bots.origins import Origins

from . import DEFAULT_RECONNECT_MAX_DELAY
from .backlog import Backlog, dimmed
from .commands import SlashCommands
from .completion import SlashCompleter
from .connection import Connection
from .questions import AnswerCompleter, OpenQuestions, Reply
from .render import (
    STYLE,
    log_line,
    message_line,
    system_line,
    unsent_line,
    user_label,
    visible,
)
from .rich_render import rich_message_line

log = logging.getLogger("roomz.cli")

NO_CONFIG = "No bots here: start with --config FILE to host some."
SHOWN_MESSAGE_IDS = 1024  # enough to catch a message delivered to both clients of a swap
UNACKNOWLEDGED_KEPT = 20  # lines sent without an answer whose key a send again reuses
#: Why a line answered ``maybe_sent`` (several nodes: Redis's reply was lost) may have gone.
MAYBE_SENT_WHY = "the server lost touch with its history store"
COLLAPSED_KEPT = 100  # collapsed messages /expand can still open


def no_bot(name: str) -> str:
    """Why a bot command for ``name`` cannot be done without a config."""
    return f"No bot {name!r} here: start with --config FILE to host bots."


#: Every slash command, declared with ``@command`` on its handler in :class:`ChatApp`:
#: dispatch (:meth:`ChatApp.handle`), ``/help`` and completion read it.
COMMANDS = SlashCommands()
command = COMMANDS.command


def print_line(line: FormattedText) -> None:
    """Write one rendered line above the prompt."""
    print_formatted_text(line, style=STYLE)


class TerminalLog(logging.Handler):
    """Log records shown as one system line above the prompt, without their tracebacks."""

    def emit(self, record: logging.LogRecord) -> None:
        """Show ``record``'s first line."""
        try:
            print_line(log_line(record))
        except Exception:
            self.handleError(record)


class ChatApp:
    """The chat terminal: what the user types goes to the server, what arrives is shown."""

    def __init__(self, server_url: str, *, config: Config | None = None,
                 session_file: Path | None = None, history: History | None = None,
                 echo: Callable[[FormattedText], None] = print_line,
                 data_dir: Path | None = None,
                 reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY) -> None:
        self.server_url = server_url
        self.config = config
        self.echo = echo
        cache = session_file or (config and config.session_cache_file) or default_session_file()
        self.connection = Connection(
            server_url, Path(cache), say=self.say, signed_in=self.start_bots,
            reconnect_max_delay=reconnect_max_delay, greeted=self._on_authenticated,
            handlers={"message": self._on_message,
                      "user_joined": self._on_user_joined, "user_left": self._on_user_left,
                      "display_name_changed": self._on_name_changed,
                      "disconnect": self._on_disconnect})
        #: The bots of ``config``, on the terminal's server and session (None without one).
        self.host = None if config is None else BotHost(
            config, server_url, session_cache_file=session_file, data_dir=data_dir,
            on_change=self._bot_changed, in_terminal=True)
        #: Who sent what: the host's, so that its bots and the terminal tell each other apart.
        self.origins: Origins[object] = self.host.origins if self.host else Origins()
        self._bot_states: dict[str, BotState] = {}  # the state each bot was last seen in
        self._shown: RecentIds[None] = RecentIds(SHOWN_MESSAGE_IDS)  # ids of messages shown
        #: Keys of lines sent that got no answer, by text: the same line sent again takes
        #: its key, and a server offering ``send_once`` says it once.
        self._unacknowledged: RecentIds[str] = RecentIds(UNACKNOWLEDGED_KEPT)
        #: Questions seen, and the open ones a typed number answers.
        self.questions = OpenQuestions()
        #: Messages shown collapsed (they have a subject), by the number /expand takes.
        self.collapsed: RecentIds[Message] = RecentIds(COLLAPSED_KEPT)
        self._next_collapsed = itertools.count(1)  # not len(collapsed): it is capped
        #: The last screenful on start, the gap after a reconnect, in reading order.
        self.backlog = Backlog(show=self._show, echo=self.echo,
                               rows=lambda: self.session.output.get_size().rows)
        self.history = history or InMemoryHistory()
        self.session: PromptSession[str] = PromptSession(
            history=self.history, auto_suggest=AutoSuggestFromHistory(),
            completer=merge_completers([SlashCompleter(COMMANDS, self),
                                        AnswerCompleter(self.questions)]),
            complete_while_typing=True, bottom_toolbar=self.toolbar, refresh_interval=0.5,
            key_bindings=_key_bindings(self),
            style=STYLE,
            # What was typed gives way to what it became: the message as the server
            # delivered it, an answer to the command, or the text with why it did not go.
            erase_when_done=True,
        )

    @property
    def client(self) -> AsyncClient:
        """The terminal's own client (``/token`` may replace it with a new one)."""
        return self.connection.client

    # -- output ----------------------------------------------------------------------------

    def say(self, text: str, kind: str = "system", *, multiline: bool = False) -> None:
        """Show a system line (``kind``: system, good, warning, error); one line unless
        ``multiline``."""
        self.echo(system_line(text, kind, multiline=multiline))

    def toolbar(self) -> FormattedText:
        """The bottom toolbar: connection state, who I am (or the sign-in I wait for), the
        server, how many bots run."""
        connection = self.connection
        states = [hosted.state for hosted in self.host.bots.values()] if self.host else []
        bots = f"{states.count(BotState.RUNNING)} bot(s) running"
        if reconnecting := states.count(BotState.RECONNECTING):
            bots += f", {reconnecting} reconnecting"
        return FormattedText([("class:toolbar",
                               f" {connection.status()} · {connection.who()} · "
                               f"{self.server_url} · {bots} ")])

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> int:
        """Resume the session, then read lines until /quit or Ctrl-D; returns the exit status."""
        with patch_stdout(raw=True):
            try:
                self.resume()
                while True:
                    try:
                        # No "Press ENTER to continue" for a failed task: it is logged, one line.
                        text = await self.session.prompt_async("> ", set_exception_handler=False)
                    except KeyboardInterrupt:
                        continue  # Ctrl-C clears the line
                    except EOFError:
                        break
                    try:
                        if await self.handle(text) is False:
                            break
                    except Exception as exc:  # a bug of ours: show it, keep the terminal
                        log.exception("while handling %r", text)
                        self.say(f"Something went wrong: {type(exc).__name__}: {exc}", "error")
            finally:
                await self.close()
        return 0

    def resume(self) -> None:
        """Connect with the cached session in the background (then start the bots);
        without one, say how to sign in."""
        self.connection.resume()

    async def handle(self, text: str) -> bool | None:
        """Run a slash command or send a message; False means quit."""
        text = text.strip()
        if not text:
            return None
        if text.startswith("/") and not text.startswith("//"):
            name, _, args = text[1:].partition(" ")
            found = COMMANDS.get(name)
            if found is None:
                self.say(f"Unknown command /{name}. /help lists the commands.", "warning")
                return None
            if found.needs_args and not args.strip():
                self.say(f"Usage: {found.usage}", "warning")
                return None
            return await found.run(self, args.strip())
        if (reply := self.questions.reply_for(text)) is not None:
            await self.answer(reply)
            return None
        await self.send(text[1:] if text.startswith("//") else text)
        return None

    async def close(self) -> None:
        """Stop the bots and disconnect."""
        if self.host is not None:
            await self.host.stop_all()
        await self.backlog.close()
        await self.connection.close()
        self.origins.disconnected(self)

    # -- chat ------------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        """Send a chat message, in several parts when it is over the server's limit (and
        say so); when a part cannot go, show it and what follows with why."""
        parts = split_text(text)
        if not self.client.connected:
            self.echo(unsent_line(f"Not sent: {self.connection.not_connected()}", text))
            return
        for number, part in enumerate(parts, 1):
            problem = await self._send_part(part)
            if problem is not None:
                why, maybe = problem
                not_sent = "perhaps not sent" if maybe else "not sent"
                what = not_sent.capitalize() if len(parts) == 1 else (
                    f"Parts {number}-{len(parts)} of {len(parts)} {not_sent}"
                    if number < len(parts) else f"Part {number} of {len(parts)} {not_sent}")
                self.echo(unsent_line(f"{what}: {why}", "\n".join(parts[number - 1:])))
                return
        if len(parts) > 1:
            self.say(f"Sent in {len(parts)} parts: a message holds at most "
                     f"{MAX_MESSAGE_LENGTH} characters.")

    async def _send_part(self, text: str) -> tuple[str, bool] | None:
        """Send one message; None once the server has it, else why not, and whether it
        may have gone all the same (no answer came)."""
        client = self.client
        origin = self.origins.sending(self, client.user["email"] if client.user else "", text)
        # A line sent again after no answer takes the key of its first send: said once.
        key = self._unacknowledged.pop(text) or (
            str(uuid.uuid4()) if client.supports(SEND_ONCE) else None)
        ack: dict[str, Any] = {}
        try:
            ack = await client.send(text, key=key)
        except ClientError:
            pass  # not connected: said below
        finally:
            self.origins.sent(self, origin, ack.get("message_id"))
        if key is not None and (not ack or "error" in ack):
            # It may have gone all the same (no answer, a dropped link, a 503 after Redis
            # kept it): sent again, the line takes this key, and the server says it once.
            self._unacknowledged.remember(text, key)
        if not ack:
            return self.connection.not_connected(), False
        if ack.get("code") == 408 or ack.get("maybe_sent") is True:
            why = ack["error"] if ack.get("code") == 408 else MAYBE_SENT_WHY
            if key is None:
                return f"{why}: it may have gone; this server may show it twice if " \
                       "you send it again", True
            return f"{why}: send it again (Up, Enter), and it is shown once", True
        if "error" in ack:
            return str(ack["error"]), False
        shown = ack.get("message_id") in self._shown or self.backlog.holds(ack.get("message_id"))
        if not shown:  # a server that did not echo it to us
            self._show(Message({"id": ack.get("message_id"), "user": client.user or {},
                                "content": html.escape(text), "timestamp": ack.get("timestamp")}))
        return None

    async def answer(self, reply: Reply) -> None:
        """Answer the open question a typed line chose; say why when it cannot go."""
        try:
            ack = await self.client.answer(reply.question, reply.chosen,
                                           free_text=reply.free_text)
        except ClientError as exc:
            self.say(f"Not answered: {exc}", "warning")
            return
        if "error" in ack:
            self.say(f"Not answered: {ack['error']}", "error")
            if ack.get("code") in (404, 410):  # closed meanwhile: stop offering it
                self.questions.answered(reply.question)
        else:
            self.questions.answered(reply.question)

    # -- slash commands (the others are with the bots) ------------------------------------

    def _emails_used_before(self, words: list[str]) -> list[tuple[str, str]]:
        """What ``/login`` completes: the emails of earlier ``/login`` lines in the history."""
        emails = {line.split(" ", 1)[1].strip() for line in self.history.get_strings()
                  if line.startswith("/login ") and " " in line.strip()}
        return [(e, "used before") for e in sorted(emails)]

    @command("login", "<email>", "email me a sign-in link (then open it, or /token)",
             arguments=_emails_used_before)
    async def login(self, email: str) -> None:
        """``/login``: request a sign-in link; wait for it to be confirmed in a browser."""
        await self.connection.login(email)

    @command("token", "<token>", "sign in with the token from the mail")
    async def connect_with_token(self, token: str) -> None:
        """``/token``: sign in with the token (a working connection stays until it has),
        and start the bots."""
        await self.connection.redeem(token)

    @command("reconnect", "", "try to reach the server now")
    async def reconnect(self) -> None:
        """``/reconnect``: try to reach the server now, instead of waiting for the next try."""
        self.connection.reconnect()

    @command("name", "[name]", "set my display name; without one, clear it")
    async def set_name(self, name: str) -> None:
        """``/name``: set this connection's display name, or clear it with ``""``."""
        if not self.client.connected:
            self.say(f"Name not changed: {self.connection.not_connected()}.", "warning")
            return
        try:
            ack = await self.client.set_display_name(name or None)
        except ClientError:
            self.say(f"Name not changed: {self.connection.not_connected()}.", "warning")
            return
        if "error" in ack:
            self.say(f"Name not changed: {ack['error']}", "error")
        elif ack.get("display_name"):
            self.say(f"You are now {user_label(self.client.user)}", "good")
        else:
            self.say("Display name cleared: you show as your email.", "good")

    @command("who", "", "my connections: terminals, pages, bots, scripts")
    async def who(self) -> None:
        """``/who``: every connection of the user, with its kind, name and display name."""
        try:
            connections = await self.client.who()
        except NotSupportedError as exc:
            self.say(str(exc), "warning")
            return
        except ClientError as exc:
            if exc.status is not None and exc.detail:  # refused: the server says why
                self.say(exc.detail, "warning")  # 503: its other nodes are out of reach
            else:
                self.say(f"Cannot list connections: {self.connection.not_connected()}.",
                         "warning")
            return
        lines = [f"{len(connections)} connection{'s' * (len(connections) != 1)}:"]
        for connection in connections:
            lines.append("  " + _described(connection))
        self.say("\n".join(lines), multiline=True)

    def _collapsed_numbers(self, words: list[str]) -> list[tuple[str, str]]:
        """What ``/expand`` completes: the numbers of collapsed messages, with subjects."""
        return [(number, visible(message.subject or ""))
                for number in reversed(self.collapsed.ids())
                if (message := self.collapsed.get(number)) is not None]

    @command("expand", "[number]", "show a collapsed message (the last one: Ctrl-O)",
             arguments=_collapsed_numbers)
    async def expand(self, number: str) -> None:
        """``/expand N``: show collapsed message N whole; without N, the last one."""
        self.show_collapsed(number)

    def show_collapsed(self, number: str = "") -> None:
        """Show the collapsed message ``number`` (or the last) whole."""
        number = number.strip() or next(reversed(self.collapsed.ids()), "")
        message = self.collapsed.get(number) if number else None
        if message is None:
            self.say("No collapsed message to show." if not number
                     else f"No collapsed message {number}.", "warning")
            return
        origin = self.origins.origin(message)
        style = _sender_style(origin is self, isinstance(origin, Bot))
        self.echo(rich_message_line(message, style, answered=self._asked(message)))

    @command("logout", "", "disconnect and forget the session")
    async def logout(self) -> None:
        """``/logout``: stop the bots, disconnect, and forget the session."""
        if self.host is not None:
            await self.host.stop_all()
        await self.connection.logout()
        self.origins.disconnected(self)
        self.say("Logged out; the session is forgotten.", "good")

    @command("quit", "", "leave (also Ctrl-D)")
    async def leave(self) -> bool:
        """``/quit``: leave the terminal (False ends :meth:`run`)."""
        return False

    @command("help", "", "this list")
    async def show_help(self) -> None:
        """``/help``: every command with its usage and what it does, and the keys."""
        self.say("Commands:\n" + "\n".join(COMMANDS.help_lines()) + "\nAlt+Enter (or Esc, "
                 "Enter) starts a new line; Ctrl-C clears the line; Ctrl-D quits.",
                 multiline=True)

    # -- events ----------------------------------------------------------------------------

    def _on_authenticated(self, client: AsyncClient, data: dict[str, Any]) -> None:
        """``client`` is signed in: say so, and show what came before (fetched through
        ``client``, which a ``/token`` greets before it replaces the one in use)."""
        self.origins.connected(data.get("connection_id"), self)
        user = data.get("user") or {}
        mine = client.user or {}
        if mine.get("email") == user.get("email"):  # with the display name re-applied
            user = mine
        away = self.connection.away()
        again = f" again, after {duration(away)} away" if away is not None else ""
        self.say(f"Connected to {self.server_url} as {user_label(user)}{again}", "good")
        self.backlog.greeted(client, data)

    def _on_disconnect(self, data: dict[str, Any]) -> None:
        self.backlog.lost()

    def _on_message(self, data: dict[str, Any]) -> None:
        self.backlog.arrived(Message(data))

    def _show(self, message: Message, history: bool = False) -> None:
        """Show ``message`` unless it was shown already: while /token swaps clients both may
        deliver it, and one we sent is shown from its acknowledgement if no echo came first.
        ``history``: one from before the terminal started, dimmed."""
        if message.id in self._shown:
            return
        self._shown.remember(message.id)
        origin = self.origins.origin(message)
        own, bot = origin is self, isinstance(origin, Bot)
        if not history:  # an old question may be closed: only live ones are answerable
            self.questions.heard(message)
        if not _is_rich(message):
            line = message_line(message, own=own, bot=bot)
            self.echo(dimmed(line) if history else line)
            return
        collapsed = None
        if message.subject:
            collapsed = next(self._next_collapsed)
            self.collapsed.remember(str(collapsed), message)
        question = message.question
        line = rich_message_line(message, _sender_style(own, bot),
                                 collapsed=None if question else collapsed,
                                 question=question, answered=self._asked(message))
        self.echo(dimmed(line) if history else line)

    def _asked(self, message: Message) -> Any:
        """The question ``message`` answers, if the terminal saw it."""
        return self.questions.known.get(message.answer_to) if message.answer_to else None

    def _on_user_joined(self, data: dict[str, Any]) -> None:
        self.say(f"{user_label(data.get('user'))} joined "
                 f"({data.get('total_connections')} connections)")

    def _on_user_left(self, data: dict[str, Any]) -> None:
        self.say(f"{user_label(data.get('user'))} left "
                 f"({data.get('remaining_connections')} remaining)")

    def _on_name_changed(self, data: dict[str, Any]) -> None:
        email = data["user"]["email"]
        name = data.get("display_name")
        self.say(f"{email} is now called {user_label(data.get('user'))}" if name
                 else f"{email} cleared their display name")

    # -- bots ------------------------------------------------------------------------------

    @property
    def bots(self) -> dict[str, Bot]:
        """The hosted bots that run (starting, running or reconnecting), by name."""
        return self.host.active if self.host else {}

    async def start_bots(self) -> None:
        """Start every configured bot that does not run, on the user's session (after each
        sign-in: bots refused before come back)."""
        if self.host is not None:
            for error in await self.host.start_all():
                self.say(str(error), "error")

    def _bot_changed(self, hosted: HostedBot) -> None:
        """Say when a bot comes up, or back; losing it and a refusal are said by the host's
        log (warnings and errors show above the prompt)."""
        before = self._bot_states.get(hosted.name)
        self._bot_states[hosted.name] = hosted.state
        if hosted.state is not BotState.RUNNING or hosted.bot is None:
            return
        if before is BotState.RECONNECTING:
            self.say(f"Bot {hosted.name} is back.", "good")
        else:
            self.say(f"Bot {hosted.name} running: {hosted.bot.plugin_names}", "good")

    async def _host_does(self, action: Awaitable[Any]) -> bool:
        """Run a host command; its refusal (a name it does not know, say) is one warning."""
        try:
            await action
        except (HostError, ConfigError) as exc:
            self.say(str(exc), "error" if isinstance(exc, ConfigError) else "warning")
            return False
        return True

    async def start_bot(self, name: str) -> None:
        """Start a hosted bot (it says when it runs)."""
        if self.host is None:
            self.say(no_bot(name), "warning")
        elif not self.client.connected and not self.connection.signed_in:
            self.say(f"Bot {name} not started: {self.connection.not_connected()}.", "warning")
        else:
            await self._host_does(self.host.start(name))

    async def stop_bot(self, name: str) -> None:
        """Stop a hosted bot (its shutdown hooks run)."""
        if self.host is None:
            self.say(no_bot(name), "warning")
        elif await self._host_does(self.host.stop(name)):
            self.say(f"Bot {name} stopped.")

    @command("bots", "", "the bots hosted here: state and plugins")
    async def show_bots(self) -> None:
        """``/bots``: each configured bot's name, state and plugins."""
        if self.host is None or not self.host.bots:
            self.say(NO_CONFIG)
            return
        for line in self.host.describe():
            self.say(line)

    @command("plugins", "", "every plugin the bots run")
    async def show_plugins(self) -> None:
        """``/plugins``: every plugin of the running bots and its commands."""
        seen: dict[str, list[str]] = {}
        for bot in self.bots.values():
            for plugin in bot.plugins:
                seen.setdefault(plugin.name, [c.name for c in plugin.commands])
        if not seen:
            self.say("No plugins are running.")
        for plugin_name, commands in sorted(seen.items()):
            shown = ", ".join("!" + c for c in commands) or "no commands"
            self.say(f"{plugin_name}: {shown}")

    def _running_plugins(self, words: list[str]) -> list[tuple[str, str]]:
        """What ``/reload`` completes: the plugins of the running bots."""
        plugins = {p.name for bot in self.bots.values() for p in bot.plugins}
        return [(name, "plugin") for name in sorted(plugins)]

    @command("reload", "<plugin>", "re-import a plugin without restarting the bots",
             arguments=_running_plugins)
    async def reload_plugin(self, name: str) -> None:
        """``/reload``: re-import a plugin; on failure the old code keeps running."""
        if self.host is None:
            self.say(f"No plugin {name!r} here: start with --config FILE to host bots.",
                     "warning")
            return
        try:
            users = self.host.reload(name)
        except ReloadFailed as exc:
            self.say(str(exc), "error")
        except HostError as exc:
            self.say(f"{exc} /plugins lists them.", "warning")
        else:
            self.say(f"Reloaded {name} in {', '.join(users)}", "good")

    def _bot_arguments(self, words: list[str]) -> list[tuple[str, str]]:
        """What ``/bot`` completes: start or stop, then the configured bots' names."""
        if not words:
            return [("start", "start a bot"), ("stop", "stop a bot")]
        hosted = self.host.bots.values() if self.host else []
        return [(bot.name, bot.state.value) for bot in hosted]

    @command("bot", "start|stop <name>", "start or stop a hosted bot", arguments=_bot_arguments)
    async def start_or_stop_bot(self, args: str) -> None:
        """``/bot start NAME`` or ``/bot stop NAME``."""
        action, _, name = args.partition(" ")
        if action not in ("start", "stop") or not name.strip():
            self.say("Usage: /bot start|stop <name>", "warning")
        elif action == "start":
            await self.start_bot(name.strip())
        else:
            await self.stop_bot(name.strip())


def _is_rich(message: Message) -> bool:
    """True for a message drawn by :mod:`.rich_render`: any content type but plain text,
    a subject, a question or an answer."""
    return (message.content_type != PLAIN or message.subject is not None
            or message.answer_to is not None)


def _sender_style(own: bool, bot: bool) -> str:
    return "class:own" if own else "class:bot" if bot else "class:name"


def _described(connection: dict[str, Any]) -> str:
    """One connection of ``/who``: ``bot helper, HelperBot, since 18:24:39 (this one)``."""
    kind = connection.get("kind") or "unknown client"
    name = connection.get("name")
    parts = [f"{kind} {name}" if name else str(kind)]
    if connection.get("display_name"):
        parts.append(html.unescape(str(connection["display_name"])))
    since = connection.get("since")
    if isinstance(since, str) and since:
        parts.append(f"since {parse_time(since).astimezone():%H:%M:%S}")
    text = ", ".join(visible(part) for part in parts)
    return text + (" (this terminal)" if connection.get("you") else "")


def _key_bindings(app: ChatApp) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("c-o")
    def _(event: KeyPressEvent) -> None:
        """Ctrl-O shows the last collapsed message whole."""
        app.show_collapsed()

    @bindings.add("escape", "enter")
    def _(event: KeyPressEvent) -> None:
        """Alt+Enter (or Esc, then Enter) starts a new line in the message."""
        event.current_buffer.insert_text("\n")

    return bindings

