"""Scheduled jobs: run a function after a delay or every N seconds, until cancelled or shutdown.

Jobs live in the bot, not in its connection: they keep running across reconnects (a job
that sends while the bot reconnects waits for the connection, like any send). A cancelled
job leaves the schedule at once, so scheduling and cancelling never piles up jobs. A job
may have a name, unique per plugin, by which the plugin can cancel it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomz.awaitables import await_me_maybe

from .clock import Clock
from .failures import PLUGIN_FAILURES

log = logging.getLogger("roomz_bots")


@dataclass(order=True)
class Job:
    """A scheduled call; ``cancel()`` stops it."""

    due: float
    seq: int
    func: Callable[[], Any] = field(compare=False)
    every: float | None = field(default=None, compare=False)
    owner: str = field(default="", compare=False)
    name: str = field(default="", compare=False)
    cancelled: bool = field(default=False, compare=False)
    scheduler: Scheduler | None = field(default=None, compare=False, repr=False)

    def cancel(self) -> None:
        """Never run this job again."""
        if not self.cancelled:
            self.cancelled = True
            if self.scheduler is not None:
                self.scheduler.forget(self)


class Scheduler:
    """Runs due jobs in one task; each run is a task of its own, so a slow job delays no other."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._jobs: list[Job] = []
        self._named: dict[tuple[str, str], Job] = {}
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        """How many jobs are scheduled."""
        return len(self._jobs)

    def after(self, seconds: float, func: Callable[[], Any], *, owner: str = "",
              name: str = "") -> Job:
        """Run ``func`` once, ``seconds`` from now."""
        return self.at(self.clock.time() + seconds, func, owner=owner, name=name)

    def at(self, when: float, func: Callable[[], Any], *, owner: str = "",
           name: str = "") -> Job:
        """Run ``func`` once at the wall-clock time ``when`` (right away if it has passed)."""
        return self._add(Job(when, next(self._seq), func, owner=owner, name=name))

    def every(self, seconds: float, func: Callable[[], Any], *, owner: str = "",
              name: str = "") -> Job:
        """Run ``func`` every ``seconds``, the first time ``seconds`` from now."""
        if seconds <= 0:
            raise ValueError(f"every() needs a positive interval, got {seconds}")
        return self._add(Job(self.clock.time() + seconds, next(self._seq), func,
                             every=seconds, owner=owner, name=name))

    def _add(self, job: Job) -> Job:
        """Schedule ``job``; one of the same owner and name is cancelled."""
        job.scheduler = self
        if job.name:
            self.cancel(job.owner, job.name)
            self._named[job.owner, job.name] = job
        heapq.heappush(self._jobs, job)
        self._changed.set()
        return job

    def cancel(self, owner: str, name: str) -> bool:
        """Cancel the job ``owner`` named ``name``; False when there is none."""
        job = self._named.get((owner, name))
        if job is not None:
            job.cancel()
        return job is not None

    def forget(self, job: Job) -> None:
        """Take ``job`` off the schedule (its ``cancel()`` does this)."""
        if job.name and self._named.get((job.owner, job.name)) is job:
            del self._named[job.owner, job.name]
        with contextlib.suppress(ValueError):  # already taken off to run
            self._jobs.remove(job)
            heapq.heapify(self._jobs)
            self._changed.set()

    def start(self) -> None:
        """Begin running jobs as they fall due."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="roomz-bots-scheduler")

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            if not self._jobs:
                await self._changed.wait()
                continue
            job = self._jobs[0]
            if job.due > self.clock.time():
                await self.clock.sleep_until(job.due, self._changed)
                continue
            heapq.heappop(self._jobs)
            if job.every is not None:
                job.due += job.every
                heapq.heappush(self._jobs, job)
            elif job.name:
                self._named.pop((job.owner, job.name), None)
            task = asyncio.create_task(self._call(job))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _call(self, job: Job) -> None:
        try:
            await await_me_maybe(job.func())
        except PLUGIN_FAILURES:
            log.exception("scheduled job %s of plugin %s raised",
                          getattr(job.func, "__qualname__", job.func), job.owner or "?")

    async def stop(self) -> None:
        """Cancel every job and wait for running ones to end."""
        jobs, self._jobs = self._jobs, []
        self._named.clear()
        for job in jobs:
            job.cancel()
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
