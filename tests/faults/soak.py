"""The soak: servers, a headless bot runner and people, left alone through random faults.

Real processes: ``roomz-server`` (one node with its state dir, or two nodes on a Redis with
an append-only file), ``roomz-cli --headless`` running one bot with ``soak_plugin.py`` (it
answers ``!ask TAG`` and writes down every message it hears), and "people": our
``AsyncClient`` connections, each sending numbered messages and commands and recording what
reaches it. Faults come at times drawn from a seeded ``random.Random``: a node SIGKILLed or
SIGTERMed and started again, the runner SIGKILLed and started again (a reboot), the links
through the loopback proxy cut or silent for a while, a person away for a while, Redis
restarted. Nobody is helped back: clients and the bot come back by themselves.

At the end, once everything is back (waited for by bounded polls), the invariants:

- every acknowledged message reached every person exactly once, each sender's in order;
- every acknowledged command was answered exactly once (the bot is never away longer than
  ``missed_command_max_age``), and no command was answered twice, acknowledged or not. The
  server offers ``send_once``: a reply in flight as the bot's link drops is sent again with
  its key once the bot is back, and one in flight as the runner is SIGKILLed is kept in
  the bot's outbox and sent again by its next run; the server says each once, so such a
  reply lost is a violation like any. Only on a server without ``send_once`` is an
  unanswered command acknowledged within 1 s of a fault that cut the bot's link counted in
  the report instead: the bot then never sends a reply again, lest it be said twice;
- the bot heard every acknowledged message, none twice;
- no send hung or went unanswered, the runner never exited by itself, no traceback in any
  process's log, and a SIGTERMed node exited 0.

``python -m tests.faults.soak --minutes N --seed S`` (``./dev soak``) runs the long one;
``tests/faults/test_soak.py`` a short one. The seed is printed: the same seed gives the
same faults at the same times (the processes' own timing still varies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomz import AsyncClient
from roomz.session_cache import SessionCache
from tests.bots.headless import ROOMZ_CLI, Cli
from tests.nodes.redis_proc import RedisProcess
from tests.server.proc import ServerProcess, free_port, server_env

from .helpers import Send, SendLog, Watch
from .proxy import TcpProxy

EMAIL = "soak@example.com"
PLUGIN = Path(__file__).with_name("soak_plugin.py")
SEND_TIMEOUT = 15.0
#: How long everything may take to come back once the faults are over.
SETTLE_SECONDS = 45.0
#: How long a bot's reply may still be on its way after all else is back: the client's
#: wait for an acknowledgement that a dropped link lost, then the send again.
RESEND_SECONDS = 15.0
#: The longest the bot can be away (a fault lasts at most 6 s, a restart a few more): a
#: command acknowledged meanwhile is younger than ``missed_command_max_age`` when it is back.
BOT_AWAY_SECONDS = 60.0
#: Faults that cut the bot's link (a link fault only on proxy 0, the bot's), and how close
#: to one a command's acknowledgement must be for its answer to have been in flight.
BOT_CUTS = ("server_kill", "server_term", "runner_kill", "link_cut", "link_down")
IN_FLIGHT_SECONDS = 1.0
#: What the runner logs as it sends a reply again with its key (in the same run, or as
#: the next run sends what its outbox kept).
SENT_AGAIN = "sending it again with its key"
#: People reconnect quickly and never give up (they are left alone for weeks).
PERSON = {"reconnect_delay": 0.1, "reconnect_delay_max": 1.0, "max_reconnect_attempts": None,
          "connection_timeout": 2.0}
#: Answers that tell the caller why a send failed: 408, no acknowledgement in time (a
#: silent link); 503, the history cannot be kept just now.
TOLD_CODES = {408, 503}
TAG = re.compile(r"^(?:!ask )?(p\d+)[ -](\d+)$")


@dataclass(frozen=True)
class Fault:
    """One planned fault: when (seconds after the start), what, on which target, how long."""

    at: float
    kind: str
    target: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.at:7.2f} s  {self.kind} {self.target} for {self.seconds:.2f} s"


KINDS_ONE_NODE = ("server_kill", "server_term", "runner_kill", "link_cut", "link_down",
                  "person_away")
#: The time a restarted process takes to come up, kept between two faults of one kind.
RECOVERY_SECONDS = 3.0


def plan(seed: int, seconds: float, nodes: int, people: int) -> list[Fault]:
    """The faults of a run, from ``seed`` alone: the same seed, the same plan."""
    rng = random.Random(seed)
    kinds = KINDS_ONE_NODE + (("redis_restart",) if nodes > 1 else ())
    free_at: dict[str, float] = {}
    faults: list[Fault] = []
    at = rng.uniform(2.0, 4.0)
    while at < seconds and len(faults) < 10_000:
        kind = rng.choice(kinds)
        target = {"person_away": rng.randrange(people), "runner_kill": 0,
                  "redis_restart": 0}.get(kind, rng.randrange(nodes))
        length = {"link_cut": 0.0, "person_away": rng.uniform(0.5, 6.0)}.get(
            kind, rng.uniform(0.0, 3.0))
        # A node's kills and SIGTERMs share its process: one at a time (both nodes may be down).
        key = f"server {target}" if kind.startswith("server") else kind
        if at >= free_at.get(key, 0.0):
            faults.append(Fault(round(at, 2), kind, target, round(length, 2)))
            free_at[key] = at + length + RECOVERY_SECONDS
        at += rng.uniform(0.5, 4.0)
    return faults


class Runner:
    """``roomz-cli --headless`` that can be killed and started again, its logs kept."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = env
        self.runs: list[Cli] = []

    async def start(self) -> None:
        """Start the runner (it comes up by itself, whatever the server is doing)."""
        process = await asyncio.create_subprocess_exec(
            ROOMZ_CLI, "--headless", "--config", str(self.config), cwd=self.config.parent,
            env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        self.runs.append(Cli(process))

    @property
    def alive(self) -> bool:
        """True while the current run has not exited."""
        return bool(self.runs) and self.runs[-1].process.returncode is None

    async def kill(self) -> None:
        """SIGKILL the current run, as a machine that loses power does."""
        await self.runs[-1].kill()

    async def stop(self) -> None:
        """SIGTERM, then make sure it is gone (clean-up)."""
        if self.alive:
            with contextlib.suppress(AssertionError, ProcessLookupError):
                await self.runs[-1].stop()
        for run in self.runs:
            await run.kill()

    @property
    def stderr(self) -> str:
        """Every run's log, one after the other."""
        return "\n".join(f"--- run {i}\n{run.stderr}" for i, run in enumerate(self.runs))


@dataclass
class Person:
    """A person's connection: what it sends and what reaches it."""

    name: str
    client: AsyncClient
    watch: Watch
    sent: list[tuple[str, Send]] = field(default_factory=list)  # (content, outcome)


@dataclass
class Report:
    """What a run did and every broken invariant, in words."""

    seed: int
    nodes: int
    seconds: float
    faults: list[Fault]
    acked: int = 0
    commands: int = 0
    heard_again: int = 0  # messages a killed runner heard again after its restart
    lost_replies: int = 0  # without send_once, answers in flight as the bot's link dropped:
    # never acknowledged, never sent again
    sent_again: int = 0  # replies the bot sent again with their key (send_once)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was broken and something was checked."""
        return not self.violations and self.acked > 0

    def text(self) -> str:
        """The seed, what ran, and what broke (the first 40 of each)."""
        kinds = ", ".join(f"{k} {n}" for k, n in Counter(f.kind for f in self.faults).items())
        head = (f"{'PASS' if self.ok else 'FAIL'} soak seed {self.seed}, {self.nodes} node(s), "
                f"{self.seconds:.0f} s, {len(self.faults)} faults "
                f"({kinds}), "
                f"{self.acked} messages acknowledged, {self.commands} of them commands; "
                f"{self.heard_again} heard again by the bot after a kill, "
                f"{self.sent_again} replies sent again with their key, "
                f"{self.lost_replies} answers lost in flight and not sent again")
        return "\n".join([head, *self.violations[:40]])


class Soak:
    """One run: set up in ``folder``, :meth:`run` the plan, check, tear down."""

    def __init__(self, folder: Path, seed: int, seconds: float, *, nodes: int = 1,
                 people: int = 3, missed_command_max_age: float = 300.0,
                 say: Callable[[str], None] = lambda line: None) -> None:
        self.folder = folder
        self.seed = seed
        self.seconds = seconds
        self.nodes = nodes
        self.max_age = missed_command_max_age
        self.people_count = people
        self.say = say
        self.faults = plan(seed, seconds, nodes, people)
        self.rng = random.Random(seed + 1)  # the people's pace, apart from the plan
        self.report = Report(seed, nodes, seconds, self.faults)
        self.redis = RedisProcess(folder / "redis") if nodes > 1 else None
        secret = secrets.token_urlsafe(40)
        redis_args = ("--redis-url", self.redis.url) if self.redis else ()
        self.servers = [ServerProcess(*redis_args, state_home=folder / "state", port=free_port(),
                                      env={"JWT_SECRET_KEY": secret}) for _ in range(nodes)]
        ports = [s.port or 0 for s in self.servers]
        # The first proxy is a balancer: what goes through it moves to node 1 when node 0
        # is down. Each other proxy is in front of its node alone.
        self.proxies = [TcpProxy(ports)] + [TcpProxy([port]) for port in ports[1:]]
        self.people: list[Person] = []
        self.runner: Runner | None = None
        self.heard_file = folder / "heard.jsonl"
        self.log = SendLog()
        self.unsent: set[str] = set()  # without send_once, answers lost in flight
        self.send_once = False  # the server offers it: replies in flight are sent again
        self.started = 0.0

    # -- set-up and tear-down ----------------------------------------------------------------

    async def _set_up(self) -> None:
        (self.folder / "state").mkdir(parents=True, exist_ok=True)
        if self.redis is not None:
            (self.folder / "redis").mkdir(exist_ok=True)
            await self.redis.start()
        for server in self.servers:
            await server.start()
        for proxy in self.proxies:
            await proxy.start()
        session = await self.servers[0].sign_in(EMAIL)
        cache = self.folder / "sessions.json"
        for i in range(self.people_count):
            # Half the people through a proxy (their links are cut), half straight to a node.
            node = i % self.nodes
            url = self.proxies[node].url if i % 2 == 0 else self.servers[node].url
            SessionCache(cache).save(url, session)
            client = AsyncClient(url, session_cache_file=cache, **PERSON)  # type: ignore[arg-type]
            self.people.append(Person(f"p{i}", client, Watch(f"p{i}", client)))
        bot_url = self.proxies[0].url
        SessionCache(self.folder / "bot-session.json").save(bot_url, session)
        shutil.copy(PLUGIN, self.folder / PLUGIN.name)
        config = self.folder / "bots.toml"
        config.write_text(f'''
[client]
server_url = "{bot_url}"
session_cache_file = "{self.folder / "bot-session.json"}"
reconnect_max_delay = 1

[[bots]]
name = "soaker"
display_name = "Soaker"
plugins = ["{PLUGIN.name}"]
missed_command_max_age = {self.max_age}
flood_burst = 1000
flood_per_second = 1000
flood_queue = 1000

[plugins.soak_plugin]
heard = "{self.heard_file}"
''')
        env = server_env(self.folder / "state", {"XDG_DATA_HOME": str(self.folder / "data")})
        self.runner = Runner(config, env)
        await self.runner.start()
        await self.runner.runs[-1].wait_for_line("bot soaker is running", timeout=20)
        for person in self.people:
            await asyncio.wait_for(person.client.connect(), 10)
        self.send_once = self.people[0].client.supports("send_once")

    async def _tear_down(self) -> None:
        for person in self.people:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(person.client.disconnect(), 5)
        if self.runner is not None:
            await self.runner.stop()
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proxy.close(), 5)
        for server in self.servers:
            await server.kill()
        if self.redis is not None:
            self.redis.kill()

    # -- the faults --------------------------------------------------------------------------

    async def _fault(self, fault: Fault) -> None:
        self.say(str(fault))
        assert self.runner is not None
        if fault.kind in ("server_kill", "server_term"):
            server = self.servers[fault.target]
            sig = signal.SIGKILL if fault.kind == "server_kill" else signal.SIGTERM
            code = await server.stop(sig, timeout=20)
            if sig is signal.SIGTERM and code != 0:
                self._violation(f"{fault}: roomz-server exited {code} on SIGTERM")
            await asyncio.sleep(fault.seconds)
            await server.start(timeout=20)
        elif fault.kind == "runner_kill":
            if not self.runner.alive:
                self._violation(f"{fault}: the runner had exited by itself:\n"
                                f"{self.runner.runs[-1].stderr}")
            await self.runner.kill()
            await asyncio.sleep(fault.seconds)
            await self.runner.start()
        elif fault.kind == "link_cut":
            self.proxies[fault.target].cut()
        elif fault.kind == "link_down":  # silent, then cut: the way back hangs meanwhile
            proxy = self.proxies[fault.target]
            proxy.blackhole()
            proxy.cut()
            await asyncio.sleep(fault.seconds)
            proxy.restore()
        elif fault.kind == "person_away":
            person = self.people[fault.target]
            await asyncio.wait_for(person.client.disconnect(), 10)
            await asyncio.sleep(fault.seconds)
            # Back on purpose: its connect waits for a server that may be down just now.
            await asyncio.wait_for(person.client.connect(retry=True), 60)
        elif fault.kind == "redis_restart":
            assert self.redis is not None
            self.redis.kill()
            await asyncio.sleep(fault.seconds)
            await self.redis.start()

    async def _run_faults(self) -> None:
        tasks = []
        for fault in self.faults:
            await asyncio.sleep(max(0.0, self.started + fault.at - time.monotonic()))
            tasks.append(asyncio.create_task(self._fault(fault)))
        for fault, outcome in zip(self.faults, await asyncio.wait_for(
                asyncio.gather(*tasks, return_exceptions=True), 90), strict=True):
            if isinstance(outcome, BaseException):
                self._violation(f"{fault}: the fault itself failed: "
                                f"{type(outcome).__name__}: {outcome}")

    # -- the people --------------------------------------------------------------------------

    async def _send(self, person: Person, content: str) -> Send:
        sent = await self.log.send(person.name, functools.partial(person.client.send, content),
                                   SEND_TIMEOUT)
        person.sent.append((content, sent))
        return sent

    async def _keep_sending(self, person: Person, stop: asyncio.Event, rng: random.Random
                            ) -> None:
        for seq in range(100_000):
            if stop.is_set():
                return
            command = rng.random() < 0.25
            await self._send(person, f"!ask {person.name}-{seq}" if command
                             else f"{person.name} {seq}")
            with contextlib.suppress(asyncio.TimeoutError):  # the pace, cut short by stop
                await asyncio.wait_for(stop.wait(), rng.uniform(0.05, 0.4))

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> Report:
        """Set up, send through the faults, let everything come back, check, tear down."""
        try:
            await self._set_up()
            self.started = time.monotonic()
            stop = asyncio.Event()
            senders = [asyncio.create_task(self._keep_sending(p, stop, random.Random(
                self.rng.random()))) for p in self.people]
            try:
                await self._run_faults()
                await asyncio.sleep(max(0.0, self.started + self.seconds - time.monotonic()))
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*senders), SEND_TIMEOUT + 5)
            await self._settle()
            self._check()
        finally:
            await self._tear_down()
            self._keep_logs()
        return self.report

    def _keep_logs(self) -> None:
        """Every process's log in the folder, as ``runner-N.log`` and ``node-N.log``."""
        runs = self.runner.runs if self.runner else []
        for i, run in enumerate(runs):
            (self.folder / f"runner-{i}.log").write_text(run.stderr)
        for i, server in enumerate(self.servers):
            (self.folder / f"node-{i}.log").write_text(server.stderr)

    def _violation(self, text: str) -> None:
        self.say("VIOLATION " + text)
        self.report.violations.append(text)

    async def _until(self, condition: Callable[[], bool], timeout: float, what: str) -> bool:
        """Poll ``condition`` at most ``timeout`` s; False (and a violation) if it never held."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self._violation(f"not within {timeout:g} s: {what}")
                return False
            await asyncio.sleep(0.1)
        return True

    async def _settle(self) -> None:
        """Wait (bounded) for everyone to be back, then for the last words to arrive."""
        assert self.runner is not None
        await self._until(lambda: all(p.client.connected for p in self.people), SETTLE_SECONDS,
                          "every person connected again")
        final = await self._send(self.people[0], "!ask final")
        if final.outcome != "ok":
            self._violation(f"the final command was not acknowledged: {final}")
        await self._until(lambda: all(self._answers(p)["final"] for p in self.people),
                          SETTLE_SECONDS, "the bot's answer to the final command everywhere")
        acked = self._acked()
        await self._until(lambda: all(p.watch.ids[s.message_id or ""] for p in self.people
                                      for _, s in acked), SETTLE_SECONDS,
                          "every acknowledged message at every person")
        await self._until(lambda: not self._unheard(acked), SETTLE_SECONDS,
                          "every acknowledged message heard by the bot")
        # The final answer can overtake a reply still on its way again (its acknowledgement
        # waited for, then sent again with its key): give those the time a resend takes.
        asked = [c[len("!ask "):] for c, _ in acked if c.startswith("!ask ")]
        deadline = time.monotonic() + RESEND_SECONDS
        while time.monotonic() < deadline and not all(
                self._answers(p)[tag] for p in self.people for tag in asked):
            await asyncio.sleep(0.1)

    # -- the invariants ----------------------------------------------------------------------

    def _comebacks(self, person: Person) -> list[str]:
        """When ``person`` went down and came back, with what its greeting's history said."""
        return [f"{entry.name} at {entry.at - self.started:.2f} s"
                + (f" {entry.data.get('history')}" if entry.name == "authenticated" else "")
                for entry in person.watch.events.entries if entry.name != "message"]

    def _at(self, sent: Send) -> str:
        """When a send was acknowledged, in seconds since the start (as faults are)."""
        return f"{sent.finished - self.started:.2f} s"

    def _acked(self) -> list[tuple[str, Send]]:
        return [(content, s) for p in self.people for content, s in p.sent if s.outcome == "ok"]

    def _heard(self) -> list[tuple[int, dict[str, Any]]]:
        """What the bot heard, each with the number of the runner's start it came in."""
        if not self.heard_file.exists():
            return []
        heard, run = [], 0
        for line in self.heard_file.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("started"):
                run += 1
            else:
                heard.append((run, entry))
        return heard

    def _unheard(self, acked: list[tuple[str, Send]]) -> list[str]:
        heard = {entry["id"] for _, entry in self._heard()}
        return [f"{c!r} (acknowledged at {self._at(s)})" for c, s in acked
                if s.message_id not in heard]

    @staticmethod
    def _answers(person: Person) -> Counter[str]:
        """How often each tag's answer reached ``person`` (one per message id)."""
        return Counter(m["content"][len("answer "):] for m in person.watch.messages
                       if str(m.get("content", "")).startswith("answer "))

    def _check(self) -> None:
        assert self.runner is not None
        acked = self._acked()
        self.report.acked = len(acked)
        self.report.commands = sum(1 for c, _ in acked if c.startswith("!ask "))
        unreported = self.log.unreported()
        if unreported:
            self._violation(f"{len(unreported)} sends neither acknowledged nor refused: "
                            f"{unreported[:5]}")
        untold = [s for s in self.log.of("error") if s.code not in TOLD_CODES]
        if untold:
            self._violation(f"{len(untold)} sends answered with unexpected errors: {untold[:5]}")
        asked_ok = {c[len("!ask "):]: s for c, s in acked if c.startswith("!ask ")}
        asked_any = {c[len("!ask "):] for p in self.people for c, _ in p.sent
                     if c.startswith("!ask ")}
        self._count_lost_replies(asked_ok)
        self.report.sent_again = sum(SENT_AGAIN in line for run in self.runner.runs
                                     for line in run.lines)
        for person in self.people:
            self._check_person(person, acked, asked_ok, asked_any)
        self._check_heard()
        unheard = self._unheard(acked)
        if unheard:
            self._violation(f"the bot never heard {len(unheard)} acknowledged messages: "
                            f"{unheard[:10]}")
        if not self.runner.alive:
            self._violation("the runner exited by itself at the end")
        logs = [(f"the runner's log (run {i})", run.lines)
                for i, run in enumerate(self.runner.runs)]
        logs += [(f"node {i}'s log", server.lines) for i, server in enumerate(self.servers)]
        for name, lines in logs:
            for traceback in tracebacks(lines):
                self._violation(f"a traceback in {name}:\n{traceback}")

    def _check_heard(self) -> None:
        """Nothing heard twice, but for what a killed runner had not yet marked as handled
        (its position is saved every 2 s, a command's as its answer starts): heard again,
        replayed, by its next start. Those are counted in the report, not violations."""
        first: dict[str, int] = {}
        twice: list[str] = []
        for run, entry in self._heard():
            message_id, text = str(entry["id"]), str(entry["text"])
            if message_id not in first:
                first[message_id] = run
            elif run > first[message_id] and entry["replayed"]:
                self.report.heard_again += 1
            else:
                twice.append(f"{text!r} (run {first[message_id]}, again in run {run}, "
                             f"replayed: {entry['replayed']})")
        if twice:
            self._violation(f"the bot heard {len(twice)} messages more than once: {twice[:10]}")

    def _count_lost_replies(self, asked_ok: dict[str, Send]) -> None:
        """The answers nobody saw to commands acknowledged within 1 s of a fault that
        cut the bot's link: counted in the report, not violations. On a server without
        send_once the reply was in flight, got no acknowledgement, and was not sent again,
        lest it be said twice. With send_once every reply is sent again (by the same run,
        or from the outbox by the next one), so only a runner kill counts: the command was
        still running, its reply not yet in the outbox, and a command runs at most once."""
        cuts = [f.at for f in self.faults if f.kind in BOT_CUTS
                and (f.target == 0 or not f.kind.startswith("link"))
                and (not self.send_once or f.kind == "runner_kill")]
        for tag, sent in asked_ok.items():
            at = sent.finished - self.started
            if not any(self._answers(p)[tag] for p in self.people) and any(
                    -IN_FLIGHT_SECONDS <= cut - at <= IN_FLIGHT_SECONDS for cut in cuts):
                self.unsent.add(tag)
        self.report.lost_replies = len(self.unsent)

    def _check_person(self, person: Person, acked: list[tuple[str, Send]],
                      asked_ok: dict[str, Send], asked_any: set[str]) -> None:
        ids = person.watch.ids
        missing = [f"{c!r} (acknowledged at {self._at(s)})" for c, s in acked
                   if not ids[s.message_id or ""]]
        if missing:
            self._violation(f"{person.name} never got {len(missing)} acknowledged messages: "
                            f"{missing[:10]}; its comebacks: {self._comebacks(person)}")
        twice = person.watch.duplicates()
        if twice:
            self._violation(f"{person.name} got {len(twice)} messages more than once: "
                            f"{list(twice.items())[:10]}")
        order: dict[str, list[int]] = {}
        for message in person.watch.messages:
            match = TAG.match(str(message.get("content", "")))
            if match:
                order.setdefault(match[1], []).append(int(match[2]))
        for sender, seqs in order.items():
            if seqs != sorted(seqs):
                wrong = next(i for i in range(1, len(seqs)) if seqs[i] < seqs[i - 1])
                self._violation(f"{person.name} got {sender}'s messages out of order: "
                                f"... {seqs[max(0, wrong - 3):wrong + 3]} ...")
        answers = self._answers(person)
        if self.max_age > BOT_AWAY_SECONDS:  # no command can grow too old
            unanswered = [f"{tag} (acknowledged at {self._at(s)})" for tag, s in
                          asked_ok.items() if tag not in answers and tag not in self.unsent]
            if unanswered:
                self._violation(f"{person.name} never saw the answer to {len(unanswered)} "
                                f"acknowledged commands: {unanswered[:10]}")
        said_twice = {tag: n for tag, n in answers.items() if n > 1}
        if said_twice:
            self._violation(f"{person.name} saw {len(said_twice)} answers more than once: "
                            f"{list(said_twice.items())[:10]}")
        unasked = set(answers) - asked_any - {"final"}
        if unasked:
            self._violation(f"{person.name} saw answers to commands never sent: {unasked}")


def tracebacks(lines: list[str]) -> list[str]:
    """Each traceback in a log, with the line that introduced it and the error it ends in."""
    found = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if not lines[j].startswith(" ")),
                       len(lines) - 1)
            found.append("\n".join(lines[max(0, i - 1):i + 4] + ["  ..."] + lines[end - 2:end + 1]))
    return found


async def soak(seed: int, seconds: float, *, nodes: int = 1,
               say: Callable[[str], None] = lambda line: None) -> Report:
    """One run in a temporary folder, kept (with every process's log) when it fails."""
    folder = Path(tempfile.mkdtemp(prefix="roomz-soak-"))
    report = await Soak(folder, seed, seconds, nodes=nodes, say=say).run()
    if report.ok:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        say(f"the logs are kept in {folder}")
    return report


def main(argv: list[str] | None = None) -> int:
    """``./dev soak``: the long soak, one node then two nodes on Redis; prints the seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per run (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: new)")
    parser.add_argument("--nodes", choices=["1", "2", "both"], default="both")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    ok = True
    for nodes in ([1, 2] if args.nodes == "both" else [int(args.nodes)]):
        print(f"soak seed {seed}, {nodes} node(s), {args.minutes:g} min "
              f"(replay: ./dev soak --seed {seed} --nodes {nodes})", flush=True)
        report = asyncio.run(soak(seed, args.minutes * 60, nodes=nodes,
                                  say=lambda line: print(line, flush=True)))
        print(report.text(), flush=True)
        ok &= report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
