"""``Bot``: one Roomz connection whose events are dispatched to its plugins."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import re
import reprlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from roomz import AsyncClient, ClientError, ConnectionError, ConnectionState
from roomz.awaitables import await_me_maybe
from roomz.content import Rich
from roomz.events import EVENTS
from roomz.limits import split_text
from roomz.questions import Question, question_payload
from roomz.send_once import SEND_ONCE

from . import dispatch
from .asked import AskedQuestions, check_tag
from .clock import Clock
from .commands import Command, UsageError
from .failures import PLUGIN_FAILURES, command_failed, place_of
from .flood import ReplyDropped, TokenBucket
from .message import Message
from .origins import Origins
from .outbox import Outbox, Pending
from .plugin_bot import PluginBot
from .plugins import Plugin, load_plugin, plugin_manager, settings_for
from .scheduler import Scheduler
from .store import Store, default_data_dir

log = logging.getLogger("roomz_bots")

#: The client's events other than ``message`` (which the bot handles first), by hook.
EVENT_HOOKS = {event: f"on_{event}" for event in EVENTS if event != "message"}
SEND_WAIT_SECONDS = 30.0  # how long a send waits for a reconnect before it fails
#: A 503 whose error starts so delivered nothing (docs/protocol.md 3.5): safe to send again.
NOT_SENT = "Message not sent:"
RESEND_DELAYS = (0.25, 0.5, 1.0, 2.0)  # between sends refused so; the last one repeats
SHUTDOWN_HOOK_SECONDS = 10.0
#: How long a stopping bot waits for a cancelled task before it cancels it again (seconds).
CANCEL_AGAIN_SECONDS = 1.0
#: Commands missed while the bot was away are answered if at most this old (seconds).
MISSED_COMMAND_MAX_AGE = 300.0
#: How often the position in the history is saved when no command moved it (seconds).
POSITION_SAVE_SECONDS = 2.0
#: The bot's own store (its position in the history), beside its plugins' stores.
OWN_STORE = "_bot"
RAN_PREFIX = "ran "  # a command run, by its message's id, in the bot's own store
FORGET_COMMANDS_EVERY = 1000  # commands noted between two sweeps of the old ones
SLOW_DOWN = ("Slow down, please: {waiting} replies are waiting to go out, so I am not "
             "answering more until half of them have.")
#: What a send returns when the bot drops it: too many replies are waiting already.
DROPPED = {"error": "not sent: too many of the bot's replies are waiting to go out",
           "code": 429}

#: The message the code running now handles: what it sends is a reply to it. Tasks it
#: starts inherit it; scheduled jobs, which run in the scheduler's task, do not.
_REPLYING_TO: contextvars.ContextVar[Message | None] = contextvars.ContextVar(
    "roomz_bots_replying_to", default=None)


DISPATCHED = ("startup", "shutdown", "on_message", "on_answer", *EVENT_HOOKS.values())


def passed_arguments(impl: Any, given: Sequence[str]) -> tuple[str, ...]:
    """The arguments a hook implementation gets: those it requires, and those with a default
    that the hook gives (``def on_message(bot, message=None)`` gets the message)."""
    return tuple(impl.argnames) + tuple(name for name in impl.kwargnames if name in given)


def not_taken(exc: BaseException) -> bool:
    """True when ``exc``, raised by ``ask()``, says the server did not take the question:
    it refused it, or nothing was sent (``NotSupportedError``). A lost connection or no
    acknowledgement in time (408) may have come after the server took it."""
    return (isinstance(exc, ClientError) and not isinstance(exc, ConnectionError)
            and exc.status != 408)


def is_acknowledgement(result: Any) -> bool:
    """True for what ``bot.send`` and ``bot.reply`` return, which a command may return in
    turn: the message went out, so there is nothing to warn about."""
    return isinstance(result, dict) and ("message_id" in result or "error" in result)


class Bot:
    """A bot: its client, its plugins, its command prefix, flood limit, jobs and stores."""

    def __init__(
        self,
        name: str,
        client: AsyncClient,
        plugins: Iterable[Plugin],
        *,
        display_name: str | None = None,
        prefix: str = "!",
        settings: dict[str, dict[str, Any]] | None = None,
        flood: TokenBucket | None = None,
        clock: Clock | None = None,
        data_dir: Path | None = None,
        origins: Origins[object] | None = None,
        missed_command_max_age: float = MISSED_COMMAND_MAX_AGE,
        reply_errors: bool = True,
    ) -> None:
        self.name = name
        self.client = client
        client.kind, client.name = "bot", name  # how who lists it
        self.display_name = display_name
        self.prefix = prefix
        self.flood = flood or TokenBucket()
        self.clock = clock or Clock()
        self.data_dir = (data_dir or default_data_dir()) / _safe(name)
        self.scheduler = Scheduler(self.clock)
        #: Who sent what: shared with the other bots of this process that hear the same
        #: messages (``origins=``), so that none answers another unless its plugin asks to.
        self.origins = origins if origins is not None else Origins()
        self._settings = settings or {}
        self.missed_command_max_age = missed_command_max_age
        #: A command that raises is answered with one line saying so (the log has the rest).
        self.reply_errors = reply_errors
        self._unsaved_position: str | None = None  # a cursor not in the bot's store yet
        self._stopping = False  # answers heard now are left to the next run
        #: While stopping, an answer was left to the next run: the position stays before it.
        self._holding = False
        self._position_saver: asyncio.TimerHandle | None = None
        self._stores: dict[str, Store] = {}
        self._asked: AskedQuestions | None = None
        self._commands_noted = 0
        self._outbox: Outbox | None = None
        self._resending: asyncio.Future[Any] | None = None  # this run's send of the outbox
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connected = asyncio.Event()
        self._name_pending = False  # the display name could not be set: set it once back
        #: This bot's connection, as the server named it (None on servers that do not).
        self.connection_id: str | None = None
        self.plugins: list[Plugin] = []
        self._views: dict[str, PluginBot] = {}
        self._install([load_plugin("help"), *plugins])
        client.on("authenticated", self._on_authenticated)  # before plugins hear of it
        client.on("disconnect", self._on_disconnect)
        client.on("message", self._on_message)
        for event, hook in EVENT_HOOKS.items():
            client.on(event, self._forward(hook))

    # -- plugins ---------------------------------------------------------------------------

    def _install(self, plugins: list[Plugin]) -> None:
        unique = {p.name: p for p in plugins}
        self.plugins = list(unique.values())
        self.pm = plugin_manager()
        for plugin in reversed(self.plugins):  # pluggy calls the last registered first
            self.pm.register(plugin.module, name=plugin.name)
        for plugin in self.plugins:
            settings = settings_for(plugin, self._settings.get(plugin.name, {}))
            if plugin.name in self._views:  # a reloaded plugin keeps its store
                self._views[plugin.name].plugin = plugin
                self._views[plugin.name].settings = settings
            else:
                self._views[plugin.name] = PluginBot(self, plugin, settings)
        # Who implements what, worked out once: dispatch runs for every message.
        self._callers: dict[str, Callable[[Any], None]] = {}
        for hook in DISPATCHED:
            caller = getattr(self.pm.hook, hook)
            implementations = [
                dispatch.Implementation(impl.plugin_name, impl.function,
                                        passed_arguments(impl, caller.spec.argnames),
                                        self._views[impl.plugin_name])
                for impl in reversed(caller.get_hookimpls())]
            self._callers[hook] = dispatch.caller(hook, implementations, self._failed,
                                                  self._returned)
            if hook == "on_answer":  # an answer goes to the plugin that asked, alone
                self._answer_callers = {
                    i.plugin: dispatch.caller(hook, [i], self._failed, self._returned)
                    for i in implementations}
            if hook == "on_message":  # another hosted bot's messages reach only some
                self._hear_all = self._callers[hook]
                self._hear_bots = dispatch.caller(
                    hook, [i for i in implementations if i.bot.plugin.reacts_to_bots],
                    self._failed, self._returned)
        self.commands = [c for p in self.plugins for c in p.commands]
        self._by_name: dict[str, Command] = {}
        for command in self.commands:
            self._answer_to(command)
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            self._call(impl.plugin_name, "register_commands", impl.function,
                       self._registrar(impl.plugin_name))

    def _registrar(self, plugin: str) -> Any:
        def register(command: Command) -> None:
            """Add ``command`` (made with ``@command``) to the bot, on behalf of ``plugin``."""
            if not isinstance(command, Command):
                raise TypeError(f"register() takes a @command, got {command!r}")
            command.plugin = plugin
            self.commands.append(command)
            self._answer_to(command)
        return register

    def _answer_to(self, command: Command) -> None:
        """Answer ``command`` by its names; one that hides another plugin's is warned about."""
        for name in command.names:
            hidden = self._by_name.get(name)
            if hidden is not None and hidden.plugin != command.plugin:
                log.warning("bot %s: %s%s of plugin %s hides %s's (the later plugin in the "
                            "list answers it)", self.name, self.prefix, name, command.plugin,
                            hidden.plugin)
            self._by_name[name] = command

    def replace_plugin(self, plugin: Plugin) -> None:
        """Swap in a freshly loaded version of a plugin (``/reload``), keeping its store."""
        self._install([plugin if p.name == plugin.name else p for p in self.plugins])

    def find_command(self, name: str) -> Command | None:
        """The command called or aliased ``name``."""
        return self._by_name.get(name)

    def store_for(self, plugin: str) -> Store:
        """The persistent store of ``plugin`` for this bot."""
        if plugin not in self._stores:
            self._stores[plugin] = Store(self.data_dir / f"{_safe(plugin)}.sqlite3")
        return self._stores[plugin]

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, hook: str, payload: Any = None) -> None:
        """Call every plugin's implementation of ``hook``, in config order, each isolated.

        Every hook takes ``bot`` and at most one other argument, ``payload``.
        """
        self._callers[hook](payload)

    def _call(self, plugin: str, what: str, func: Callable[..., Any], *args: Any) -> None:
        """Call one plugin function, isolated: what it raises is logged, what it returns run."""
        try:
            result = func(*args)
        except PLUGIN_FAILURES as exc:
            self._failed(plugin, what, exc)
            return
        if result is not None:
            self._returned(plugin, what, result)

    def _returned(self, plugin: str, what: str, result: Any) -> None:
        if inspect.isawaitable(result):
            # A coroutine runs in a task of its own: a slow plugin delays no other.
            self._spawn(self._finish(plugin, what, result), f"plugin {plugin}: {what}")

    async def _finish(self, plugin: str, what: str, awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except PLUGIN_FAILURES as exc:
            self._failed(plugin, what, exc)

    def _failed(self, plugin: str, what: str, exc: BaseException) -> None:
        # The plugin's line is in the line itself: the terminal shows no traceback.
        place = self._place(plugin, exc)
        # A traceback helps with a plugin's bug, not with a connection that is down.
        log.error("bot %s: plugin %s failed in %s: %s: %s%s", self.name, plugin, what,
                  type(exc).__name__, exc, f" ({place})" if place else "",
                  exc_info=None if isinstance(exc, ClientError) else exc)

    def _place(self, plugin: str, exc: BaseException) -> str | None:
        """``quotes.py, line 12``: the plugin's last line that ``exc`` went through."""
        view = self._views.get(plugin)
        return place_of(getattr(view.plugin.module, "__file__", None) if view else None, exc)

    def _spawn(self, coro: Awaitable[Any], name: str | None = None) -> asyncio.Future[Any]:
        """Run ``coro`` in a task the bot stops with it; ``name`` says whose it is."""
        task = asyncio.ensure_future(coro)
        if name is not None:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _forward(self, hook: str) -> Any:
        def forward(event: dict[str, Any]) -> None:
            self._dispatch(hook, event)
        return forward

    def _on_authenticated(self, event: dict[str, Any]) -> None:
        history = event.get("history")
        if isinstance(history, dict):  # where the history stood as the bot joined
            self._keep_position(history, at_once=False)
        self.connection_id = event.get("connection_id")
        self.origins.connected(self.connection_id, self)
        self._connected.set()
        if not self._stopping and self._resending is None:
            # What an earlier run left unanswered goes out again, once connected.
            self._resending = self._spawn(self._send_outbox(), f"bot {self.name}: outbox")
        if self._name_pending:  # the client re-applies only a name that was set once
            self._name_pending = False
            self._spawn(self._apply_display_name())

    def _on_disconnect(self, event: dict[str, Any]) -> None:
        self._connected.clear()

    def _on_message(self, data: dict[str, Any]) -> None:
        if "answer_to" in data:  # an answer to a question of ours, maybe of an earlier run
            self._hand_over(data)
        elif "question_data" in data:  # ours, maybe, asked by a run killed before the ack
            self.asked.recognise(data)
        if self._holding:
            return  # a stopping bot left an answer before this: the next run hears both
        message = Message(data)
        origin = self.origins.origin(message)
        if origin is self:
            self._keep_position(data, at_once=False)
            return  # never react to ourselves
        from_bot = isinstance(origin, Bot)  # the terminal's user is no bot
        replying = _REPLYING_TO.set(message)
        try:
            # What _dispatch does, without its call: this runs for every message.
            (self._hear_bots if from_bot else self._hear_all)(message)
            command = message.text.startswith(self.prefix)
            if command and self._first_time(message, bool(data.get("replayed"))):
                self._run_command(message, from_bot)
        finally:
            _REPLYING_TO.reset(replying)
        # A command's position is saved before its answer goes out: a restart never
        # answers it twice (other messages' positions are saved a moment later).
        self._keep_position(data, at_once=command)

    @property
    def asked(self) -> AskedQuestions:
        """The questions this bot's plugins asked that are not answered yet (its store)."""
        if self._asked is None:
            self._asked = AskedQuestions(self.store_for(OWN_STORE), self.client.server_url)
        return self._asked

    @property
    def outbox(self) -> Outbox:
        """The messages this bot is sending with a key, in its store while each is sent:
        what a run that died or stopped meanwhile left, the next one sends again."""
        if self._outbox is None:
            self._outbox = Outbox(self.store_for(OWN_STORE), self.client.server_url)
        return self._outbox

    def _hand_over(self, data: dict[str, Any]) -> None:
        """Give the answer ``data`` to the ``on_answer`` of the plugin that asked, when no
        ``ask()`` waits for it (of any age: the plugin decides what it still means)."""
        # A stopping bot's hook could not finish: the next run hears the answer again (a
        # server without history replays nothing: then it is handed over at once).
        if self._stopping and self.client.cursor is not None:
            if not self._holding and self.asked.is_ours(data):
                self._unsaved_position = self.client.cursor  # what came before it
                self._save_position()
                self._holding = True
            return
        self._answer(data)

    def _answer(self, data: Mapping[str, Any]) -> None:
        """Call the ``on_answer`` of the plugin that asked the question ``data`` closes,
        when no ``ask()`` waits for it."""
        heard = self.asked.heard(data)
        if heard is None:
            return
        plugin, answer = heard
        call = self._answer_callers.get(plugin)
        if call is None:
            log.warning("bot %s: the answer %r to %r, asked by plugin %s, is lost: no ask() "
                        "waits for it, and the plugin has no on_answer hook (or is gone)",
                        self.name, answer.message.text[:60], answer.question, plugin)
            return
        call(answer)

    def _first_time(self, message: Message, replayed: bool) -> bool:
        """True for a command to run: noted in the bot's store as run. A replayed one is
        not run when too old, or when a run of this bot noted it already: on several
        nodes, a command kept earlier can reach the bot after a later one, whose place a
        restart then resumes before."""
        if replayed and self._too_old(message):
            return False
        noted = f"{RAN_PREFIX}{message.id}"
        store = self.store_for(OWN_STORE)
        if replayed and noted in store:
            log.info("bot %s: not answering %r from %s again: answered before a restart",
                     self.name, message.text[:60], message.label)
            return False
        store[noted] = self.clock.time()
        self._commands_noted += 1
        if self._commands_noted % FORGET_COMMANDS_EVERY == 0:  # a bot may run for weeks
            self._forget_old_commands()
        return True

    def _forget_old_commands(self) -> None:
        """Forget the commands run longer ago than a replayed one is answered at all."""
        store, oldest = self.store_for(OWN_STORE), self.clock.time() - self.missed_command_max_age
        for noted, at in list(store.items(RAN_PREFIX)):
            if not isinstance(at, (int, float)) or at < oldest - POSITION_SAVE_SECONDS:
                store.pop(noted)

    def _too_old(self, message: Message) -> bool:
        """True for a missed command older than the bot answers, with a log line."""
        age = self.clock.time() - message.timestamp.timestamp()
        if age <= self.missed_command_max_age:
            return False
        log.info("bot %s: not answering %r from %s, sent %s while the bot was away: older "
                 "than %g s", self.name, message.text[:60], message.label,
                 message.timestamp.isoformat(timespec="seconds"), self.missed_command_max_age)
        return True

    # -- the bot's place in its user's history ----------------------------------------------

    def _keep_position(self, data: dict[str, Any], *, at_once: bool) -> None:
        """Remember the bot has handled what ``data`` (a message, or the greeting's history)
        has the cursor of: in its store now, or within a moment."""
        cursor = data.get("cursor")
        if not isinstance(cursor, str) or self._holding:
            return  # a server without history, or a stopping bot that left an answer
        self._unsaved_position = cursor
        if at_once:
            self._save_position()
        elif self._position_saver is None:
            self._position_saver = asyncio.get_running_loop().call_later(
                POSITION_SAVE_SECONDS, self._save_position)

    @property
    def _position_key(self) -> str:
        """Where the store keeps the position: one per server (cursors are the server's)."""
        return f"cursor {self.client.server_url}"

    def _save_position(self) -> None:
        if self._position_saver is not None:
            self._position_saver.cancel()
            self._position_saver = None
        if self._unsaved_position is not None:
            self.store_for(OWN_STORE)[self._position_key] = self._unsaved_position
            self._unsaved_position = None

    def _run_command(self, message: Message, from_bot: bool) -> None:
        name, _, line = message.text[len(self.prefix):].partition(" ")
        command = self._by_name.get(name.strip())
        if command is None or command.plugin is None:
            return  # not ours: another bot may answer it, or it is just punctuation
        view = self._views[command.plugin]
        if from_bot and not view.plugin.reacts_to_bots:
            return
        try:
            args, kwargs = command.bind(line, bot=view, message=message)
        except UsageError as exc:
            self._spawn(self._usage(view, message, command, exc))
            return

        what = f"command {self.prefix}{command.name}"

        async def run() -> None:
            try:
                result = await await_me_maybe(command.func(*args, **kwargs))
            except UsageError as exc:
                await self._usage(view, message, command, exc)
                return
            except PLUGIN_FAILURES as exc:  # not a cancel: a bot stopping says nothing
                self._failed(view.plugin.name, what, exc)
                await self._tell_failed(view, message, command, exc)
                return
            if isinstance(result, (str, Rich)) and (result.text if isinstance(result, Rich)
                                                    else result):
                await view.reply(message, result)
            elif not isinstance(result, (str, Rich, type(None))) \
                    and not is_acknowledgement(result):  # return await bot.reply(...)
                log.warning("bot %s: %s%s of plugin %s returned %s %s, which is not text: "
                            "nothing was sent (return a str, or Markdown, Code or Diff)",
                            self.name, self.prefix, command.name, command.plugin,
                            type(result).__name__, reprlib.repr(result))

        self._spawn(self._finish(command.plugin or "?", what, run()),
                    f"plugin {command.plugin}: {what}")

    async def _usage(self, view: PluginBot, message: Message, command: Command,
                     error: UsageError) -> None:
        reason = f" ({error})" if str(error) else ""
        await view.reply(message, f"Usage: {self.prefix}{command.usage}{reason}")

    async def _tell_failed(self, view: PluginBot, message: Message, command: Command,
                           error: BaseException) -> None:
        """Tell the sender of ``message`` that ``command`` raised ``error``, in one line
        without the traceback (unless ``reply_errors`` is off). A reply that cannot go out
        is logged: it waits no longer than any reply does."""
        if not self.reply_errors or isinstance(error, ConnectionError):
            return  # a send of the command's waited for the connection in vain: so would this
        text = command_failed(f"{self.prefix}{command.name}", view.plugin.name, error,
                              self._place(view.plugin.name, error))
        try:
            await view.reply(message, text)
        except ClientError as exc:
            log.warning("bot %s: could not tell %s that %s%s failed: %s", self.name,
                        message.label, self.prefix, command.name, exc)

    # -- sending ---------------------------------------------------------------------------

    async def send(self, text: str | Rich) -> dict[str, Any]:
        """Post ``text`` under the flood limit; waits (bounded) while the bot reconnects.

        ``text`` may be :class:`roomz.content.Markdown`, ``Code`` or ``Diff``: it goes out
        with its ``content_type`` (and ``subject``, marked ``(1/2)``... on each part when it
        takes several), split where each part still renders (:func:`roomz.content.split_content`).

        Text longer than a message may be goes out whole in several, in order, split
        between lines where possible (:func:`roomz.limits.split_text`), so that neither our
        server (which refuses over-long messages) nor the published one (which cuts them)
        loses any of it.
        Returns the server's (last) acknowledgement; raises :class:`roomz.ConnectionError`
        when the bot is stopped, or stays disconnected for longer than 30 seconds. A 503
        that says nothing was delivered ("Message not sent: ... try again shortly") is sent
        again for up to 30 seconds, and so, with its key, is one that says it may have
        gone (``maybe_sent``: several nodes, Redis away). On a server that offers
        ``send_once`` each part is kept in the bot's outbox while it is sent: one still on
        its way when the bot dies or stops is sent again, said once, by its next run.

        Sent while the bot handles a message, ``text`` is a reply to it: when the flood
        limit's line of replies overflows it is dropped, and :data:`DROPPED` (code 429) is
        returned; the sender is asked once to slow down, and one line logged. A reply
        whose first part went out is never cut short.
        """
        rich = text if isinstance(text, Rich) else None
        if rich is not None:
            text = rich.text
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a bot can only send non-empty text, got {text!r}")
        replying_to = _REPLYING_TO.get()
        parts = rich.parts() if rich is not None else split_text(text)
        ack: dict[str, Any] = {}
        for number, part in enumerate(parts):
            fields = _part_fields(rich, number, len(parts))
            ack = await self._send_one(part, replying_to, continuing=number > 0, fields=fields)
            if ack == DROPPED:
                break  # only a first part is ever dropped: nothing went out
        return ack

    async def _send_one(self, text: str, replying_to: Message | None, *,
                        continuing: bool = False, fields: dict[str, Any] | None = None,
                        pending: Pending | None = None) -> dict[str, Any]:
        """Send one message under the flood limit. On a server that offers send_once it
        carries a key and is noted in the outbox until the send ends (``pending``: one an
        earlier run noted): a send the bot's stop cuts short, or its process's death, leaves
        it there for the next run."""
        fields = fields or {}
        key = pending.key if pending is not None else self._outgoing(text, fields)
        try:
            return await self._send_noted(text, replying_to, continuing=continuing,
                                          fields=fields, key=key)
        except asyncio.CancelledError:
            if key is not None and self._stopping:
                self.outbox.left(key)
                log.warning("bot %s: stopping while sending a message %r: kept in its "
                            "outbox, for its next run to send again with its key (said "
                            "once)", self.name, text[:60])
                key = None
            raise
        finally:
            # Answered, refused, given up (and said so): only a run's end leaves it noted.
            if key is not None:
                self.outbox.done(key)

    def _outgoing(self, text: str, fields: dict[str, Any]) -> str | None:
        """A key for a message about to go out, noted in the outbox with it; None on a
        server without send_once (sent again, the message could be said twice)."""
        if not self.client.supports(SEND_ONCE):
            return None
        key = str(uuid.uuid4())
        self.outbox.record(key, text, fields, self.clock.time())
        return key

    async def _send_noted(self, text: str, replying_to: Message | None, *,
                          continuing: bool, fields: dict[str, Any],
                          key: str | None) -> dict[str, Any]:
        if replying_to is None:
            await self.flood.take()
        else:
            try:
                await self.flood.take_reply(continuing=continuing)
            except ReplyDropped as drop:
                if drop.first:
                    self._spawn(self._overflowed(replying_to))
                return dict(DROPPED)
        await self._until_connected(f"send {text[:40]!r}")
        email = (self.client.user or {}).get("email", "")
        mine = self.origins.sending(self, email, text)
        ack: dict[str, Any] = {}
        try:
            ack = await self._send_until_taken(text, fields, key)
        finally:
            self.origins.sent(self, mine, ack.get("message_id"))
        if ack.get("code") == 408 and not self.client.supports(SEND_ONCE):
            log.warning("bot %s: no acknowledgement of a message %r (it may or may not have "
                        "been sent; not sent again, lest it be said twice): %s",
                        self.name, text[:60], ack.get("error"))
        elif ack.get("code") == 408:
            log.warning("bot %s: no acknowledgement of a message %r, sent again with its key "
                        "for %g s (it may or may not have been sent; said once if it was): "
                        "%s", self.name, text[:60], SEND_WAIT_SECONDS, ack.get("error"))
        elif "error" in ack:
            log.warning("bot %s: the server refused a message: %s", self.name, ack)
        return ack

    async def _send_outbox(self) -> None:
        """Send again, oldest first and under the flood limit, what the outbox keeps and no
        send of this run is sending: what an earlier run left unanswered as it died or
        stopped. Each goes with its key, so the server says it once. One older than
        ``missed_command_max_age``, or any on a server without send_once now, is dropped."""
        for pending in list(self.outbox.pending()):
            if self._stopping:
                return
            age = self.clock.time() - pending.at
            if not self.client.supports(SEND_ONCE):
                log.warning("bot %s: not sending again a message %r left unacknowledged by "
                            "an earlier send: the server no longer offers send_once, so it "
                            "could be said twice", self.name, pending.text[:60])
                self.outbox.drop(pending)
            elif age > self.missed_command_max_age:
                log.info("bot %s: not sending again a message %r left unacknowledged by an "
                         "earlier send: older than %g s", self.name, pending.text[:60],
                         self.missed_command_max_age)
                self.outbox.drop(pending)
            else:
                self.outbox.take(pending)
                log.warning("bot %s: a message %r was left unacknowledged by an earlier "
                            "send (%.0f s ago): sending it again with its key (send_once: "
                            "said once)", self.name, pending.text[:60], age)
                try:
                    await self._send_one(pending.text, None, fields=pending.fields,
                                         pending=pending)
                except ClientError as exc:  # not connected for 30 s: given up, as any send
                    log.warning("bot %s: could not send again a message %r: %s", self.name,
                                pending.text[:60], exc)

    async def _send_until_taken(self, text: str, fields: dict[str, Any],
                                key: str | None) -> dict[str, Any]:
        """Send, for up to ``SEND_WAIT_SECONDS``, until the message is taken or refused.

        While the server answers that it delivered nothing and to try again shortly (it
        cannot keep messages just now: Redis is away), try again; with a key, also while it
        answers that the message may have gone (``maybe_sent``). On a server that offers
        ``send_once`` the message carries a key of its own, and when no acknowledgement
        came (408, or the link dropped) it is sent again with that key once connected:
        the server says it once. Without that, any other answer is returned: sent again,
        the message could be said twice.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEND_WAIT_SECONDS
        key = key if self.client.supports(SEND_ONCE) else None
        refused = 0
        while True:
            lost = True  # no acknowledgement: the message may have gone out
            try:
                ack = await self.client.send(text, key=key, **fields)
            except ConnectionError as exc:
                if key is None or loop.time() >= deadline:
                    raise
                self._sending_again(text, str(exc))
                await asyncio.sleep(RESEND_DELAYS[0])  # the client is noticing the drop
            else:
                if ack.get("code") == 503 and (str(ack.get("error")).startswith(NOT_SENT)
                                               or (ack.get("maybe_sent") is True and key)):
                    lost = ack.get("maybe_sent") is True  # Redis's answer lost: perhaps kept
                    delay = RESEND_DELAYS[min(refused, len(RESEND_DELAYS) - 1)]
                    refused += 1
                    if loop.time() + delay > deadline:
                        return ack
                    await asyncio.sleep(delay)
                elif ack.get("code") != 408 or key is None or loop.time() >= deadline:
                    return ack
                else:
                    self._sending_again(text, str(ack.get("error")))
            await self._until_connected(f"send {text[:40]!r}")
            if lost and not self.client.supports(SEND_ONCE):
                # Came back to a server without it: sent again, the key would be left out.
                return {"error": "no acknowledgement, and the server no longer offers "
                                 "send_once: not sent again", "code": 408}

    def _sending_again(self, text: str, why: str) -> None:
        log.warning("bot %s: no acknowledgement of a message %r (%s): sending it again "
                    "with its key once connected (send_once: said once)", self.name,
                    text[:60], why)

    async def _until_connected(self, what: str) -> None:
        """Return once connected; raise :class:`roomz.ConnectionError` when the bot is
        stopped, or still reconnecting after 30 s."""
        if self.client.connection_state is ConnectionState.DISCONNECTED:
            raise ConnectionError(f"bot {self.name} is not connected; cannot {what}")
        if not self.client.connected:
            try:
                await asyncio.wait_for(self._connected.wait(), SEND_WAIT_SECONDS)
            except asyncio.TimeoutError:
                raise ConnectionError(
                    f"bot {self.name} could not {what}: still not connected "
                    f"after {SEND_WAIT_SECONDS:g} s"
                ) from None

    async def ask(self, question: str, answers: Sequence[str], *, timeout: float,
                  default: str | None = None, plugin: str | None = None,
                  tag: Any = None) -> str | None:
        """Ask the user's connections ``question`` and return the label of the answer
        chosen, or ``default`` when nobody answers within ``timeout`` seconds (the server
        keeps the time, also while this bot is away). Goes out under the flood limit.

        Asked for ``plugin``, the question is kept in the bot's store until answered: an
        answer this call does not live to return goes to that plugin's ``on_answer``,
        with ``tag`` (anything JSON holds; else ``ValueError``, before asking).
        Raises :class:`roomz.NotSupportedError` on a server without questions."""
        check_tag(tag)
        await self.flood.take()
        await self._until_connected(f"ask {question[:40]!r}")
        _, asked = question_payload(question, answers, timeout=timeout, default=default)
        async with self._noted(asked, plugin, tag, poll=False) as note:
            answer = await self.client.ask(question, answers, timeout=timeout,
                                           default=default, on_asked=note)
        return answer.choice

    async def poll(self, question: str, answers: Sequence[str], *,
                   timeout: float, plugin: str | None = None,
                   tag: Any = None) -> Counter[str]:
        """Ask ``question`` of every connection for ``timeout`` seconds; how many chose
        each answer (every answer counted, 0 included), in the order offered. ``plugin``
        and ``tag``: as for :meth:`ask` (``on_answer`` gets the counts at the timeout)."""
        check_tag(tag)
        await self.flood.take()
        await self._until_connected(f"ask {question[:40]!r}")
        counts: Counter[str] = Counter({label: 0 for label in answers})
        _, asked = question_payload(question, answers, timeout=timeout, keep_open=True)
        async with self._noted(asked, plugin, tag, poll=True) as note:
            heard = await self.client.poll(question, answers, timeout=timeout, on_asked=note)
        for answer in heard:
            counts.update(answer.choices)
        return counts

    @contextlib.asynccontextmanager
    async def _noted(self, question: Question, plugin: str | None, tag: Any, *,
                     poll: bool) -> AsyncIterator[Callable[[Question], None]]:
        """Note ``question`` in the store as it goes out (when a plugin asks), and yield
        what notes its id once the server has taken it; the note is forgotten when the
        ``ask()`` returns, kept when it is cancelled (or loses the connection)."""
        if plugin is None:
            yield lambda question: None
            return
        key = self.asked.asking(question, plugin=plugin, tag=tag, poll=poll,
                                now=self.clock.time(), connection_id=self.connection_id)
        taken: list[str] = []

        def note(question: Question) -> None:
            taken.append(question.id)
            self.asked.taken(key, question.id)

        try:
            yield note
        except BaseException as exc:
            if taken:
                closed = self.asked.abandoned(taken[0])
                if closed is not None:  # cancelled as its answer came: nobody hears it again
                    self._answer(closed)
            else:
                self.asked.cut_short(key, refused=not_taken(exc))
            raise
        if taken:
            self.asked.answered(taken[0])

    async def _overflowed(self, message: Message) -> None:
        """Ask the sender once to slow down; log how many replies were dropped once the
        overflow is over (or the bot stops)."""
        try:
            text = SLOW_DOWN.format(waiting=self.flood.max_waiting)
            try:  # a post, not a reply: it goes ahead of the replies and is never dropped
                await self._send_one(f"{message.display_name}: {text}" if message.display_name
                                     else text, None)
            except ClientError as exc:
                log.warning("bot %s: could not ask %s to slow down: %s", self.name,
                            message.label, exc)
            await self.flood.calm()
        finally:
            log.warning("bot %s: %d replies were waiting to go out (flood_queue); %d more "
                        "were dropped until half of them had gone", self.name,
                        self.flood.max_waiting, self.flood.dropped)

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Run startup hooks, start jobs, connect and set the display name.

        Raises :class:`roomz.AuthenticationError` or :class:`roomz.ConnectionError` when
        the bot cannot sign in.
        """
        await self.run_startup()
        await self.connect()
        log.info("bot %s is running with plugins: %s", self.name, self.plugin_names)

    @property
    def plugin_names(self) -> str:
        """The bot's plugins, by name, comma-separated (for log lines)."""
        return ", ".join(p.name for p in self.plugins)

    async def run_startup(self) -> None:
        """Start the jobs and run the startup hooks: the first half of :meth:`start`.

        The client resumes where the bot's store says it stopped: the commands it missed
        meanwhile are answered (if younger than ``missed_command_max_age``).
        """
        if self.client.cursor is None:
            self.client.cursor = self.store_for(OWN_STORE).get(self._position_key)
        self._stopping = self._holding = False  # a bot started again after a stop
        self.asked.forget_stale(self.clock.time())
        self._forget_old_commands()
        self.scheduler.start()
        await self._run_lifecycle("startup")

    async def connect(self, *, retry: bool = False) -> None:
        """Connect and set the display name: the second half of :meth:`start`.

        Raises what ``AsyncClient.connect`` raises.
        """
        await self.client.connect(retry=retry)
        if self.display_name:
            await self._apply_display_name()

    async def _apply_display_name(self) -> None:
        assert self.display_name is not None
        try:
            ack = await self.client.set_display_name(self.display_name)
        except ConnectionError:  # dropped again at once: set it when the bot is back
            self._name_pending = True
            return
        self._name_pending = False
        if "error" in ack:
            log.warning("bot %s: display name %r refused: %s", self.name,
                        self.display_name, ack.get("error"))

    async def stop(self) -> None:
        """Run shutdown hooks, stop jobs, disconnect, and close the stores.

        Answers to the bot's questions that come meanwhile are left to its next run (on a
        server with history, which gives them again)."""
        self._stopping = True
        await self._run_lifecycle("shutdown")
        await self.scheduler.stop()
        await self._cancel_tasks()
        await self.client.disconnect()
        self.origins.disconnected(self)
        if not self._holding:
            self._unsaved_position = self.client.cursor or self._unsaved_position
        self._save_position()
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self._asked = None
        self._outbox = None
        self._resending = None  # a bot started again sends what this run left

    async def _cancel_tasks(self) -> None:
        """Cancel the running commands and coroutine hooks, and wait for them to end.

        What is still running a second later is cancelled again, for at most
        ``SHUTDOWN_HOOK_SECONDS``: before Python 3.12, ``asyncio.wait_for`` lets a cancel
        pass when what it waits for arrives with it (CPython gh-86296), as in
        python-socketio's ``call()`` when ``bot.ask``'s acknowledgement comes in as the bot
        stops; the ask then waited out the question's timeout.
        """
        running, ended = set(self._tasks), set()
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_HOOK_SECONDS
        while running:
            for task in running:
                task.cancel()
            done, running = await asyncio.wait(running, timeout=CANCEL_AGAIN_SECONDS)
            ended |= done
            if running and asyncio.get_running_loop().time() >= deadline:
                log.error("bot %s: still running after %g s of cancels, left behind: %s",
                          self.name, SHUTDOWN_HOOK_SECONDS,
                          ", ".join(sorted(task.get_name() for task in running)))
                break
        await asyncio.gather(*ended, return_exceptions=True)  # retrieved: none is logged

    async def _run_lifecycle(self, hook: str) -> None:
        """Run ``startup`` or ``shutdown`` in every plugin and wait for them (bounded)."""
        before = set(self._tasks)
        self._dispatch(hook)
        running = self._tasks - before
        if running:
            done, pending = await asyncio.wait(running, timeout=SHUTDOWN_HOOK_SECONDS)
            for task in pending:
                log.error("bot %s: a %s hook did not finish within %g s", self.name, hook,
                          SHUTDOWN_HOOK_SECONDS)
                task.cancel()


def _part_fields(rich: Rich | None, number: int, parts: int) -> dict[str, Any]:
    """The rich fields of part ``number`` of ``parts``: the subject numbered when several."""
    if rich is None:
        return {}
    fields = rich.fields()
    if parts > 1 and rich.subject:
        fields["subject"] = f"{rich.subject} ({number + 1}/{parts})"
    return fields


def _safe(name: str) -> str:
    """A name usable as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"
