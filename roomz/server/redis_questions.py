"""Open questions of several nodes on one Redis: asked through any node, answered through
any, timed out once by whichever node reaches the deadline first (docs/protocol.md 3.8).

Only imported with ``--redis-url``. The keys, under ``roomz:questions:``:

- ``open``, a hash: question id -> what answering and timing it out need (JSON: the
  asker's email, ``user`` object and connection id, its ``question_data``);
- ``deadlines``, a sorted set: question id -> its deadline (Unix time, Redis's clock);
- ``per-user``, a hash: email -> how many of their questions are open (the 429);
- ``answered:ID``, a set: the connections that answered the poll ``ID`` (``keep_open``);
- ``closed``, a hash: question id -> ``"EMAIL WHY"``, and ``closed-order``, a sorted set
  of the same ids by when they closed: the newest :data:`REMEMBERED_CLOSED`, so that a
  late answer hears 410 rather than 404, as on one node.

Each change is one Lua script (redis-py's ``register_script``): it happens whole or not at
all, and Redis runs one script at a time, so of two answers racing from two nodes for a
question, the second finds it closed. Every time is Redis's, so the nodes' clocks need
not agree.

**Timeouts.** Every node sweeps the deadlines: it sleeps until the earliest it knows of,
never longer than ``sweep_seconds`` (its heartbeat), and a question asked through it wakes
it when that is due sooner. Each question due is claimed by the script that closes it,
with ``ZREM`` on the deadlines: of all the nodes that see it due, exactly one sends its
timeout message. So a question times out on time while the node it was asked through
lives, and at most one sweep late (``sweep_seconds``, 5 s by default) when that node has
died. The message is sent after the claim: a node that dies between the two loses it
(at most once, where one node's restart may send it twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from . import question_rules as rules
from .question_store import REMEMBERED_CLOSED, OpenQuestion
from .quiet_log import QuietLog
from .redis_state import CLOCK, PREFIX, guard, once, run_key
from .unavailable import StoreUnavailable

log = logging.getLogger("roomz.server")
quiet = QuietLog(log)

KEYS = f"{PREFIX}questions:"
#: Questions timed out per round trip of a sweep; more due are swept again at once.
SWEEP_BATCH = 100
#: How long stopping waits for a sweep under way (a Redis call times out in 2 s).
STOP_SECONDS = 3.0

# Every script touching one question gets its keys in this order (:meth:`_keys`), and the
# question's id as ARGV[1]; the last key names the run (``redis_state.once``).
_CLOSE = """
local function close(why, remembered)
    local record = redis.call('HGET', KEYS[1], ARGV[1])
    if not record then return false end
    local email = cjson.decode(record)['email']
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('DEL', KEYS[4])
    if redis.call('HINCRBY', KEYS[3], email, -1) <= 0 then redis.call('HDEL', KEYS[3], email) end
    if why then
        redis.call('HSET', KEYS[5], ARGV[1], email .. ' ' .. why)
        redis.call('ZADD', KEYS[6], now, ARGV[1])
        local over = redis.call('ZCARD', KEYS[6]) - tonumber(remembered)
        if over > 0 then
            local oldest = redis.call('ZRANGE', KEYS[6], 0, over - 1)
            redis.call('ZREMRANGEBYRANK', KEYS[6], 0, over - 1)
            redis.call('HDEL', KEYS[5], unpack(oldest))
        end
    end
    return record
end
"""


class RedisQuestions:
    """The :class:`~roomz.server.question_rules.QuestionBook` of several nodes, in Redis.

    ``deliver`` sends a timeout message (to the history and every node's connections);
    ``on_unreachable`` is called when Redis fails a change, as the history does, so that
    the message bus waits for the other nodes to listen again before its next publish.
    """

    # ARGV: id, record, email, timeout, most open per user
    ASK = CLOCK + """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'asked' end
        if tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0') >= tonumber(ARGV[5]) then
            return 'too-many'
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
        redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
        return 'asked'"""
    # ARGV: id, email, connection id, '1' for keep_open, closed remembered, why
    ANSWER = CLOCK + _CLOSE + """
        local record = redis.call('HGET', KEYS[1], ARGV[1])
        if not record or cjson.decode(record)['email'] ~= ARGV[2] then
            local closed = redis.call('HGET', KEYS[5], ARGV[1])
            if closed then return {'not-open', closed} end
            return {'not-open'}
        end
        local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
        if deadline and tonumber(deadline) <= now then return {'due'} end
        if ARGV[4] == '1' then
            if redis.call('SADD', KEYS[4], ARGV[3]) == 0 then return {'twice'} end
            return {'taken'}
        end
        close(ARGV[6], ARGV[5])
        return {'taken', deadline}"""
    # ARGV: id, closed remembered, why
    TIME_OUT = CLOCK + _CLOSE + """
        local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
        if not deadline then return false end
        local record = close(ARGV[3], ARGV[2])
        if not record then  -- its question is gone (evicted, deleted): never due again
            redis.call('ZREM', KEYS[2], ARGV[1])
            return false
        end
        return {record, deadline}"""
    # ARGV: id
    WITHDRAW = CLOCK + _CLOSE + """
        if close(false, 0) then return 1 end
        return 0"""
    # ARGV: id, record, email, deadline
    REOPEN = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
        redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
        redis.call('HDEL', KEYS[5], ARGV[1])
        redis.call('ZREM', KEYS[6], ARGV[1])
        return 1"""
    # KEYS: deadlines; ARGV: how many at most. The ids due, and seconds until the first
    # deadline ('' when none is open).
    DUE = CLOCK + """
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])
        local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        local wait = ''
        if first[2] then wait = tostring(tonumber(first[2]) - now) end
        return {wait, due}"""

    def __init__(self, redis: aioredis.Redis, deliver: rules.Deliver, *, sweep_seconds: float,
                 on_unreachable: Callable[[], None] = lambda: None) -> None:
        self.redis = redis
        self.sweep_seconds = sweep_seconds
        self.on_unreachable = on_unreachable
        self._deliver = deliver
        self._ask, self._answer, self._time_out, self._withdraw, self._reopen = (
            redis.register_script(once(script)) for script in (
                self.ASK, self.ANSWER, self.TIME_OUT, self.WITHDRAW, self.REOPEN))
        self._due = redis.register_script(self.DUE)
        self._due_sooner = asyncio.Event()  # set: sweep now, not at the planned time
        self._wake_at = math.inf  # when the sweeper wakes next (the loop's clock)
        self._undo_later: list[rules.Undo] = []  # undone while Redis was unreachable
        self._undoing = asyncio.Lock()  # each undo kept for later is done once
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    async def open(self) -> None:
        """Start sweeping the deadlines (Redis keeps the questions themselves)."""
        self._sweeper = asyncio.create_task(self._sweep_until_closed())

    async def ask(self, message_id: str, email: str, asker: dict[str, Any],
                  connection_id: str, data: dict[str, Any]) -> rules.Undo:
        """Open the question ``message_id`` (``data``: its ``question_data``, as delivered)
        on every node until its answer or its timeout; what withdraws it. Raises
        :class:`~roomz.server.rich_messages.Refused` (429) when ``email`` has too many
        questions open on all nodes, :class:`StoreUnavailable` when Redis is unreachable
        (then nothing changed)."""
        await self._undo_pending()  # questions withdrawn while Redis was away count no more
        record = json.dumps({"email": email, "asker": asker, "connection_id": connection_id,
                             "data": data})
        outcome = await self._run(self._ask, message_id, record, email, data["timeout"],
                                  rules.MAX_OPEN_PER_USER)
        if outcome == "too-many":
            raise rules.too_many()
        if asyncio.get_running_loop().time() + data["timeout"] < self._wake_at:
            self._due_sooner.set()
        return functools.partial(self._undo, self._withdraw, message_id)

    async def answer(self, email: str, connection_id: str, fields: dict[str, Any]) -> rules.Undo:
        """Take the answer in ``fields`` (``answer_to``, ``answers``, ``free_text``) from a
        connection of ``email``, on any node; what takes it back. A plain question closes
        here, for every node.

        Raises :class:`~roomz.server.rich_messages.Refused` when the answer does not fit
        the question, or the question is unknown (404), closed (410, also when another
        node's answer came first, or its deadline passed before any node timed it out), or
        a poll this connection answered (409); :class:`StoreUnavailable` when Redis is
        unreachable (then nothing changed).
        """
        await self._undo_pending()  # else a retry hears 410 or 409 for an answer undone
        question_id = fields["answer_to"]
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.hget(f"{KEYS}open", question_id)
            pipe.hget(f"{KEYS}closed", question_id)
            record, closed = await self._guarded(pipe.execute())
        question = _question(question_id, record, 0.0) if record is not None else None
        if question is None or question.email != email:
            raise rules.not_open(question_id, email, closed)
        rules.check_answer(question_id, question.data, fields)
        keep_open = question.data["keep_open"]
        outcome = await self._run(self._answer, question_id, email, connection_id,
                                  "1" if keep_open else "", REMEMBERED_CLOSED, rules.ANSWERED)
        if outcome[0] == "not-open":  # closed by another node since we read it
            raise rules.not_open(question_id, email, outcome[1] if len(outcome) > 1 else None)
        if outcome[0] == "due":  # timed out, though no node has swept it yet: do it now
            self._due_sooner.set()
            raise rules.not_open(question_id, email, f"{email} {rules.TIMED_OUT}")
        if outcome[0] == "twice":
            raise rules.answered_twice(question_id)
        if keep_open:
            return functools.partial(self._take_back, question_id, connection_id)
        return functools.partial(self._undo, self._reopen, question_id, record, email,
                                 outcome[1])

    async def _take_back(self, question_id: str, connection_id: str) -> None:
        """Forget one connection's answer to a poll (a set member: no script needed)."""
        async def forget() -> None:
            await self._guarded(self.redis.srem(f"{KEYS}answered:{question_id}",
                                                connection_id))
        await self._undo_now_or_later(forget)

    async def _undo(self, script: AsyncScript, question_id: str, *args: Any) -> None:
        """Run an undoing script, now or, while Redis is unreachable, as it answers again."""
        await self._undo_now_or_later(functools.partial(self._run, script, question_id, *args))

    async def _undo_now_or_later(self, undo: Callable[[], Awaitable[Any]]) -> None:
        try:
            await undo()
        except StoreUnavailable as exc:
            log.warning("a question's change could not be undone yet (%s): it will be once "
                        "Redis answers again", exc)
            self._undo_later.append(undo)

    async def _undo_pending(self) -> None:
        """Do the undos kept while Redis was unreachable, oldest first; raises
        :class:`StoreUnavailable`, keeping those left, while it still is."""
        async with self._undoing:  # done twice, a reopening could undo a later answer
            while self._undo_later:
                await self._undo_later[0]()
                self._undo_later.pop(0)

    def closing(self) -> None:
        """Sweep no more: a sweep started while the server stops would only hold the stop
        up while Redis is silent (another node, or the next start, sweeps instead)."""
        self._stopping = True
        self._due_sooner.set()

    async def close(self) -> None:
        """Stop sweeping, letting a sweep under way finish (its timeouts are claimed); do
        the undos kept for later, if Redis answers."""
        self.closing()
        # Bounded: redis-py may swallow a cancellation; the loop then ends at its next turn.
        if self._sweeper is not None \
                and not (await asyncio.wait({self._sweeper}, timeout=STOP_SECONDS))[0]:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper}, timeout=STOP_SECONDS)
        try:  # the sweep that would do them has stopped
            await self._undo_pending()
        except StoreUnavailable as exc:
            log.warning("%d change(s) of questions not undone as the server stops (%s): a "
                        "question withdrawn stays open, an answer refused stays taken",
                        len(self._undo_later), exc)

    async def _sweep_until_closed(self) -> None:
        """Sweep the deadlines until :meth:`close`; Redis outages are logged, not raised."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._due_sooner.clear()
            self._wake_at = math.inf  # a question asked during the sweep sweeps again
            try:
                await self._undo_pending()
                wait = await self._sweep()
            except StoreUnavailable as exc:
                quiet.warning("question sweep", "cannot time questions out: %s; trying "
                              "again in %g s", exc, self.sweep_seconds)
                wait = self.sweep_seconds
            except Exception:  # a sweep that stops would leave every question open
                log.exception("timing questions out failed; trying again in %g s",
                              self.sweep_seconds)
                wait = self.sweep_seconds
            wait = max(0.0, min(wait, self.sweep_seconds))
            self._wake_at = loop.time() + wait
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._due_sooner.wait(), wait)

    async def _sweep(self) -> float:
        """Time out the questions whose deadlines have passed, those this node claims;
        seconds until the next deadline."""
        wait, due = await guard(self._due(keys=[f"{KEYS}deadlines"], args=[SWEEP_BATCH]))
        for question_id in due:
            claimed = await self._run(self._time_out, question_id, REMEMBERED_CLOSED,
                                      rules.TIMED_OUT)
            if claimed:  # this node, of all, took it: it sends the message
                question = _question(question_id, claimed[0], float(claimed[1]))
                await self._deliver(question.email, rules.timeout_message(question))
        if due:
            return 0.0  # others may be due too: look again at once
        return float(wait) if wait else self.sweep_seconds

    async def _run(self, script: AsyncScript, question_id: str, *args: Any) -> Any:
        """Run ``script`` on the question's keys, with its id as ARGV[1], once."""
        return await self._guarded(script(keys=[*_keys(question_id), run_key()],
                                          args=[question_id, *args]))

    async def _guarded(self, call: Awaitable[Any]) -> Any:
        try:
            return await guard(call)
        except StoreUnavailable:
            self.on_unreachable()
            raise


def _keys(question_id: str) -> list[str]:
    """The keys of every script on one question, in the order they use them."""
    return [f"{KEYS}open", f"{KEYS}deadlines", f"{KEYS}per-user",
            f"{KEYS}answered:{question_id}", f"{KEYS}closed", f"{KEYS}closed-order"]


def _question(question_id: str, record: str, deadline: float) -> OpenQuestion:
    """The open question ``question_id`` from its record in ``open``."""
    fields = json.loads(record)
    return OpenQuestion(question_id, fields["email"], fields["asker"],
                        fields["connection_id"], fields["data"], deadline)
