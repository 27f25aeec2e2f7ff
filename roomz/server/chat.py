"""The live side: Socket.IO connections, each user's private channel, messages and names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import socketio

from ..send_once import MAX_KEY_LENGTH, SEND_ONCE, is_key
from . import internals
from .channels import channel_of
from .message_rate import MessageRate
from .presence import Departure, PresenceStore
from .question_rules import Deliver, QuestionBook, Undo
from .quiet_log import QuietLog
from .replay import Replays, Resume, resume_request
from .rich_messages import Refused, rich_fields
from .sessions import Session, SessionError, Sessions, cookie_value
from .settings import ServerSettings
from .unavailable import StoreUnavailable
from .validation import (
    MAX_DISPLAY_NAME_LENGTH,
    clean_content,
    clean_display_name,
    content_too_long,
)
from .who import ClientInfo, client_of, listing

log = logging.getLogger("roomz.server")
quiet = QuietLog(log)  # strangers can make these lines: one per kind per interval

NOT_AUTHENTICATED = {"error": "Not authenticated", "code": 401}
INVALID_FORMAT = {"error": "Invalid message format", "code": 400}
INVALID_CONTENT = {"error": "Missing or invalid 'content' field", "code": 400}
INVALID_NAME = {
    "error": f"Invalid display name: must be 1-{MAX_DISPLAY_NAME_LENGTH} characters, no newlines",
    "code": 400,
}
NOT_DELIVERED = {"error": "Message not delivered to all your connections: the server cannot "
                          "reach its other nodes; try again shortly", "code": 503}
BUSY = "Server busy: shared state unreachable; try again shortly"
#: Pauses while a question's message may have been kept, until Redis answers (about 1 min).
SETTLE_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
NOT_KEPT = {"error": "Message not sent: the server cannot keep it in its history just now; "
                     "try again shortly", "code": 503}
#: On several nodes, Redis may have kept, and so delivered, a message whose answer was lost:
#: clients say "perhaps", and the same message sent again with its key is said once.
PERHAPS_KEPT = {"error": "Message perhaps not sent: the server lost touch with its history "
                         "store as it kept it; try again shortly", "code": 503,
                "maybe_sent": True}
NOT_RECORDED = {"error": "Message not sent: the server cannot record its question or answer "
                         "just now; try again shortly", "code": 503}
NOT_LISTED = {"error": "Connections not listed: the server cannot reach its other nodes; "
                       "try again shortly", "code": 503}
_NO_DATA = object()
#: How long an event of a new connection waits for its greeting and replay (docs/protocol.md
#: 3.7): their Redis reads time out in 2 s; past it, the event is handled anyway. Well under
#: the ping timeout, as the connection reads nothing else meanwhile.
ENTRY_WAIT_SECONDS = 10.0
#: What this server adds to the protocol, named in ``authenticated`` (docs/protocol.md 3.8-9);
#: with history on, :data:`SEND_ONCE` (3.5) too.
FEATURES = ["content_types", "questions", "who"]
INVALID_KEY = {"error": f"Invalid 'key': must be a string of 1-{MAX_KEY_LENGTH} characters",
               "code": 400}
KEY_WITH_QUESTION = {"error": "Invalid 'key': a question or an answer cannot carry one "
                              "(only plain and rich messages are said once)", "code": 400}

#: Makes the keeper of the questions, given how it delivers their timeouts (app.py).
QuestionsFor = Callable[[Deliver], QuestionBook]


async def _nothing() -> None:
    """Undoes a message that neither asks nor answers a question."""


def _message_of(conn: Connection, message_id: str, content: str,
                rich: dict[str, Any]) -> dict[str, Any]:
    """The ``message`` event of ``content`` sent through ``conn``, stamped now."""
    return {"id": message_id, "user": conn.user(), "content": clean_content(content),
            "timestamp": now_iso(), "connection_id": conn.connection_id, **rich}


def now_iso() -> str:
    """The current UTC time in ISO 8601, as every event carries it."""
    return datetime.now(timezone.utc).isoformat()


@dataclass(slots=True)
class Connection:
    """One signed-in Socket.IO connection; display names live here, per connection."""

    email: str
    connection_id: str
    session: Session  # which sign-in it came from, checked until it ends
    rate: MessageRate  # messages and name changes it may still send
    display_name: str | None = None
    resume: Resume | None = None  # the history it asked for as it connected (extension)
    client: ClientInfo = ClientInfo()  # what it said it is, for who

    @property
    def channel(self) -> str:
        """The user's private channel, shared by all their connections."""
        return channel_of(self.email)

    def user(self) -> dict[str, Any]:
        """The ``user`` object events carry."""
        return {"id": self.channel, "email": self.email, "display_name": self.display_name}


class Chat:
    """Socket.IO event handlers of PROTOCOL.md section 2, bound to one ``AsyncServer``."""

    def __init__(self, sio: socketio.AsyncServer, sessions: Sessions,
                 settings: ServerSettings, presence: PresenceStore,
                 questions: QuestionsFor, replays: Replays | None = None) -> None:
        self.sio = sio
        self.replays = replays  # the history extension, unless history is off
        self.sessions = sessions
        self.settings = settings
        self.presence = presence
        self.connections: dict[str, Connection] = {}
        self._too_many = {"error": f"Too many messages: at most {settings.message_rate:g} per "
                                   "second; slow down", "code": 429}
        self._welcomes: set[asyncio.Task[None]] = set()
        #: Connections not yet greeted and caught up: their events wait for this. Only
        #: while they enter, so a connection keeps no event of its own for its life.
        self._entering: dict[str, asyncio.Event] = {}
        self._settling: set[asyncio.Task[None]] = set()  # _settle(): undos that wait on Redis
        self._closing = False  # the server is stopping (close_all)
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        sio.on("message", self.message)
        sio.on("set_display_name", self.set_display_name)
        if replays is not None:
            sio.on("history", self.history)
        sio.on("who", self.who)
        # Opened and closed with the server (app.py): in one node, or in Redis.
        self.questions = questions(self._deliver)
        # On one node and on several alike; said once (3.5) needs the history, which
        # keeps the keys.
        self.features = FEATURES + [SEND_ONCE] if replays is not None else FEATURES
        # Several nodes: the history publishes what it keeps, in the order kept.
        self._kept_is_sent = replays is not None and replays.store.publishes
        sessions.watch(self.check_sessions)  # a logout here ends its connections at once

    async def connect(self, sid: str, environ: Any = None, auth: Any = None, *extra: Any) -> None:
        """Accept a connection whose cookie holds a valid session, and announce it."""
        if sid in self.connections:
            return  # a connected client emitted an event named "connect": not ours to obey
        try:
            claims = await self.sessions.verify(cookie_value(environ.get("HTTP_COOKIE")))
        except SessionError as exc:
            quiet.warning("refused connection", "refused a connection: %s", exc)
            raise socketio.exceptions.ConnectionRefusedError(f"Not authenticated: {exc}") from None
        except StoreUnavailable:
            raise socketio.exceptions.ConnectionRefusedError(BUSY) from None
        email = claims["email"]
        resume = resume_request(auth) if self.replays is not None else None
        if isinstance(resume, str):
            raise socketio.exceptions.ConnectionRefusedError(f"Bad auth payload: {resume}")
        try:
            client = client_of(auth)
        except ValueError as exc:
            raise socketio.exceptions.ConnectionRefusedError(f"Bad auth payload: {exc}") \
                from None
        if not self.settings.allows(email):
            raise socketio.exceptions.ConnectionRefusedError("Not authenticated: email not allowed")
        if len(self.connections) >= self.settings.max_connections:
            log.warning("refused %s: server full (%d connections)", email, len(self.connections))
            raise socketio.exceptions.ConnectionRefusedError(
                f"Server full: {self.settings.max_connections} connections; try again later"
            )
        conn = Connection(email=email, connection_id=str(uuid.uuid4()),
                          session=Session.of(claims), client=client,
                          rate=MessageRate(self.settings.message_rate,
                                           self.settings.message_burst), resume=resume)
        self.connections[sid] = conn
        try:
            total = await self.presence.join(email, conn.connection_id, conn.user(), client)
        except StoreUnavailable:
            del self.connections[sid]
            raise socketio.exceptions.ConnectionRefusedError(BUSY) from None
        cap = self.settings.max_connections_per_user
        if total > cap:  # counted on every node: join, and undo it when over
            del self.connections[sid]
            # Unreachable, the store counts us out when it answers again (its write-back).
            with contextlib.suppress(StoreUnavailable):
                await self.presence.leave(email, conn.connection_id)
            quiet.warning("user cap", "refused a connection of %s: %d connections at most",
                          email, cap)
            raise socketio.exceptions.ConnectionRefusedError(
                f"too many connections for {email}: {cap} at most; close one")
        # Greet once python-socketio has confirmed the connection, so clients may emit
        # from their "authenticated" handler.
        self._entering[sid] = asyncio.Event()
        task = asyncio.create_task(self._welcome(sid, conn, total))
        self._welcomes.add(task)
        task.add_done_callback(self._welcomes.discard)

    async def _welcome(self, sid: str, conn: Connection, total: int) -> None:
        """Send ``authenticated`` to the new connection, then ``user_joined`` to the others."""
        try:
            entered = await self._greet(sid, conn)
        finally:
            self._let_in(sid)
        if entered:
            await self._tell_others(conn, sid, "user_joined", {
                "user": conn.user(), "timestamp": now_iso(), "total_connections": total,
            })

    async def _greet(self, sid: str, conn: Connection) -> bool:
        """Greet the connection once python-socketio has confirmed it; False when it is
        gone, or could not be caught up (then it was disconnected)."""
        for _ in range(100):  # the confirmation is queued right after connect() returns
            if internals.is_connected(self.sio, sid) or sid not in self.connections:
                break
            await asyncio.sleep(0)
        if sid not in self.connections:
            return False
        greeting = {"user": conn.user(), "channel": conn.channel, "server_time": now_iso(),
                    "connection_id": conn.connection_id, "features": self.features}
        return await self._enter(sid, conn, greeting)

    def _let_in(self, sid: str) -> None:
        """The connection's events wait no longer: it entered, or it is gone."""
        entering = self._entering.pop(sid, None)
        if entering is not None:
            entering.set()

    async def _enter(self, sid: str, conn: Connection, greeting: dict[str, Any]) -> bool:
        """Greet the connection and put it in its channel; one that asked for what it missed
        (history) gets it in between. False when that cannot be done now: it is then
        disconnected, to come back later."""
        if self.replays is None or conn.resume is None:
            if self.replays is not None:
                greeting["history"] = self.replays.announcement
            # This node's own connection: no queue needed.
            await self.sio.emit("authenticated", greeting, to=sid, ignore_queue=True)
            await self.sio.enter_room(sid, conn.channel)
            return True
        try:
            await self.replays.admit(sid, conn.channel, conn.email, conn.resume, greeting)
        except StoreUnavailable as exc:
            quiet.warning("replay", "disconnected %s: cannot read its history (%s)",
                          conn.email, exc)
            await self.sio.disconnect(sid, ignore_queue=True)
            return False
        return True

    async def disconnect(self, sid: str, reason: Any = None, *extra: Any) -> None:
        """Forget a closed connection and tell the user's other connections."""
        if internals.is_connected(self.sio, sid):
            return  # a live client emitted an event named "disconnect": ignore it
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        self._let_in(sid)  # events that wait for its greeting are answered 401
        try:
            remaining = await self.presence.leave(conn.email, conn.connection_id)
        except StoreUnavailable:
            if not self._closing:  # stopping, the store says once what becomes of them all
                log.warning("%s left while shared state was unreachable: no user_left sent",
                            conn.email)
            return
        await self._tell_others(conn, sid, "user_left", {
            "user": conn.user(), "timestamp": now_iso(), "remaining_connections": remaining,
        })

    async def _sender(self, sid: str, data: Any) -> Connection | dict[str, Any]:
        """The signed-in connection behind an event, or the error answer when it may not send
        this one: not signed in, over its message rate, or data that is not an object.

        A connection's events wait until it has been greeted and has caught up: a client may
        emit as soon as Socket.IO connects, and its answers, and its own message, must come
        after its ``authenticated`` and replay, the message before its acknowledgement.
        """
        if (entering := self._entering.get(sid)) is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(entering.wait(), ENTRY_WAIT_SECONDS)
        conn = self.connections.get(sid)
        if conn is None:
            return NOT_AUTHENTICATED
        if not conn.rate.take():
            return self._too_many
        if not isinstance(data, dict):
            return INVALID_FORMAT
        return conn

    async def message(self, sid: str, data: Any = _NO_DATA, *extra: Any) -> dict[str, Any]:
        """Broadcast a chat message to the sender's channel, sender included, then ack it."""
        conn = await self._sender(sid, data)
        if isinstance(conn, dict):
            return conn
        content = data.get("content")
        if not isinstance(content, str) or not content.strip():
            return INVALID_CONTENT
        if (too_long := content_too_long(content)) is not None:
            return {"error": too_long, "code": 400}  # refused whole: never cut in silence
        key = data.get("key") if self.replays is not None else None  # without: ignored
        if key is not None:
            return await self._message_once(conn, content, key, data)
        message_id = str(uuid.uuid4())
        try:
            rich, undo = await self._rich(conn, message_id, data)
        except Refused as refused:
            return refused.answer
        except StoreUnavailable as exc:
            quiet.warning("questions", "refused a question or answer of %s: %s", conn.email, exc)
            return NOT_RECORDED
        message = _message_of(conn, message_id, content, rich)
        if self.replays is not None:  # kept before anyone sees it: acknowledged is replayable
            try:
                await self.replays.keep(conn.email, message)
            except StoreUnavailable as exc:
                await self._undo_unless_kept(conn.email, message_id, undo, exc.maybe_done)
                return self._not_kept(exc)
        return await self._broadcast(conn, message)

    def _not_kept(self, exc: StoreUnavailable) -> dict[str, Any]:
        """The answer to a message the history could not keep, or perhaps kept: on one node
        a failed write kept nothing; on several, Redis may have run it and lost the reply."""
        return PERHAPS_KEPT if exc.maybe_done and self._kept_is_sent else NOT_KEPT

    async def _undo_unless_kept(self, email: str, message_id: str, undo: Undo,
                                maybe_kept: bool) -> None:
        """Undo the question asked or answered by a message that could not be kept: it goes
        with its message. On several nodes, Redis may have kept (and so published) the
        message though its answer was lost (``maybe_kept``): whether it did is looked up
        once Redis answers again, and a message every connection was shown keeps its
        question."""
        if undo is _nothing or not (maybe_kept and self._kept_is_sent):
            await undo()
            return
        task = asyncio.get_running_loop().create_task(self._settle(email, message_id, undo))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, email: str, message_id: str, undo: Undo) -> None:
        assert self.replays is not None  # only with the history on
        for delay in SETTLE_DELAYS:
            try:
                kept = await self.replays.holds(email, message_id)
            except StoreUnavailable:
                await asyncio.sleep(delay)
                continue
            if not kept:
                log.info("%s: a question asked or answered by a message that was not kept "
                         "is undone", email)
                await undo()
            return
        await undo()  # Redis still away: undone as before (as soon as Redis answers)

    async def _message_once(self, conn: Connection, content: str, key: Any,
                            data: dict[str, Any]) -> dict[str, Any]:
        """A message with a ``key`` (feature ``send_once``): delivered and kept unless one
        with that key was kept within the history's window; then the first one's answer,
        marked ``duplicate``. The look and the keep are one step of the history store."""
        assert self.replays is not None  # keys are only read with history on
        if not is_key(key):
            return INVALID_KEY
        if "question_data" in data or "answer_to" in data:
            return KEY_WITH_QUESTION
        try:
            rich = rich_fields(data)
        except Refused as refused:
            return refused.answer
        message = _message_of(conn, str(uuid.uuid4()), content, rich)
        try:
            kept = await self.replays.keep_once(conn.email, key, message)
        except StoreUnavailable as exc:
            return self._not_kept(exc)
        if kept.first is not None:  # sent before: said once, answered as the first time
            return {"status": "ok", "message_id": kept.first["id"],
                    "timestamp": kept.first["timestamp"], "duplicate": True}
        return await self._broadcast(conn, message)

    async def _broadcast(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """Emit ``message`` to the sender's channel, unless keeping it did; its
        acknowledgement."""
        if not self._kept_is_sent:
            try:
                await self.sio.emit("message", message, room=conn.channel)
            except StoreUnavailable:
                return NOT_DELIVERED
        return {"status": "ok", "message_id": message["id"], "timestamp": message["timestamp"]}

    async def _rich(self, conn: Connection, message_id: str,
                    data: dict[str, Any]) -> tuple[dict[str, Any], Undo]:
        """The rich fields of the message ``message_id`` (docs/protocol.md 3.8), the question
        it asks or the answer it gives recorded, and what undoes that. Raises
        :class:`Refused` with the error answer, :class:`StoreUnavailable` when the question
        or answer cannot be recorded."""
        fields = rich_fields(data)
        if "question_data" not in fields and "answer_to" not in fields:
            return fields, _nothing
        if "question_data" in fields:
            return fields, await self.questions.ask(message_id, conn.email, conn.user(),
                                                    conn.connection_id,
                                                    fields["question_data"])
        return fields, await self.questions.answer(conn.email, conn.connection_id, fields)

    async def _deliver(self, email: str, event: dict[str, Any]) -> None:
        """A message of the server's own (a question's timeout) to ``email``'s channel."""
        try:
            if self.replays is not None:  # kept like any message: replayed to who was away
                await self.replays.keep(email, event)
            if not self._kept_is_sent:
                await self.sio.emit("message", event, room=channel_of(email))
        except StoreUnavailable:
            log.warning("%s: a question's timeout message was not delivered, shared state "
                        "is unreachable", email)

    async def who(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        """List the connections of the asking connection's user on every node
        (docs/protocol.md 3.9)."""
        conn = await self._sender(sid, {} if data is None else data)
        if isinstance(conn, dict):
            return conn
        try:
            connections = await self.presence.connections(conn.email, self.connections.values())
        except StoreUnavailable as exc:
            quiet.warning("who", "cannot list the connections of %s: %s", conn.email, exc)
            return NOT_LISTED
        return {"status": "ok", "connections": listing(conn, connections)}

    async def set_display_name(self, sid: str, data: Any = _NO_DATA,
                               *extra: Any) -> dict[str, Any]:
        """Set or clear this connection's display name and tell the user's other connections."""
        conn = await self._sender(sid, data)
        if isinstance(conn, dict):
            return conn
        name = data.get("display_name")
        if name is None or name == "":
            cleaned = None
        elif not isinstance(name, str) or (cleaned := clean_display_name(name)) is None:
            return INVALID_NAME
        conn.display_name = cleaned
        await self.presence.rename(conn.connection_id, conn.user())
        await self._tell_others(conn, sid, "display_name_changed", {
            "user": conn.user(), "timestamp": now_iso(), "connection_id": conn.connection_id,
        })
        return {"status": "ok", "display_name": cleaned}

    async def history(self, sid: str, data: Any = _NO_DATA, *extra: Any) -> dict[str, Any]:
        """The last ``limit`` messages of the sender's user (extension), oldest first."""
        conn = await self._sender(sid, data)
        if isinstance(conn, dict):
            return conn
        assert self.replays is not None  # the event is only handled with history on
        try:
            return await self.replays.latest(conn.email, data)
        except StoreUnavailable:
            return {"error": "History unavailable just now; try again shortly", "code": 503}

    async def check_sessions(self, email: str | None = None) -> None:
        """End the live connections (all, or those of ``email``) whose sessions have ended.

        Ended means logged out, all of the user's sessions ended, expired, or an email no
        longer allowed. One look-up in the session records covers them all; each ended
        connection gets ``session_ended`` ``{"reason"}``, then is disconnected.
        """
        live = [(sid, conn) for sid, conn in self.connections.items()
                if email is None or conn.email == email]
        if not live:
            return
        try:
            ended = await self.sessions.ended([conn.session for _, conn in live])
        except StoreUnavailable as exc:  # the next check tries again
            quiet.warning("session check", "cannot check sessions: %s", exc)
            return
        for sid, conn in live:
            reason = ended.get(conn.session.id)
            if reason is None and not self.settings.allows(conn.email):
                reason = "email no longer allowed"
            if reason is not None and self.connections.get(sid) is conn:
                log.info("ending a connection of %s: session %s", conn.email, reason)
                await self.sio.emit("session_ended", {"reason": reason}, to=sid,
                                    ignore_queue=True)
                await self.sio.disconnect(sid, ignore_queue=True)

    async def announce_departures(self, departures: Sequence[Departure]) -> None:
        """Send ``user_left`` for connections that ended with their node, as if they closed."""
        for departure in departures:
            try:
                await self.sio.emit("user_left", {
                    "user": departure.user, "timestamp": now_iso(),
                    "remaining_connections": departure.remaining,
                }, room=channel_of(departure.email))
            except StoreUnavailable:
                log.warning("%s: no user_left sent for a dead node's connection, shared state "
                            "is unreachable", departure.email)

    def email_of(self, sid: str) -> str | None:
        """Whose signed-in connection ``sid`` is, if it is one (for log lines)."""
        conn = self.connections.get(sid)
        return conn.email if conn is not None else None

    async def _tell_others(self, conn: Connection, sid: str, event: str,
                           payload: dict[str, Any]) -> None:
        """Emit ``event`` to the user's other connections; without shared state, log it."""
        try:
            await self.sio.emit(event, payload, room=conn.channel, skip_sid=sid)
        except StoreUnavailable:
            log.warning("%s: no %s sent, shared state is unreachable", conn.email, event)

    async def close_all(self) -> None:
        """Close every transport as a server going away does (shutdown).

        Clients see their connection end and, like Socket.IO's own servers' clients on
        shutdown, reconnect on their own; a Socket.IO DISCONNECT would tell them not to.
        Shared state that does not answer costs the stop one timeout, not one per
        connection (:meth:`PresenceStore.closing`); no sweep of the questions starts
        meanwhile to hold the stop up further.
        """
        self._closing = True
        for task in list(self._settling):  # Redis away as the server stops: left undone
            task.cancel()
        self.presence.closing()
        self.questions.closing()
        await internals.close_transports(self.sio)
