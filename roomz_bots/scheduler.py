"""Scheduled jobs: run a function after a delay or every N seconds, until cancelled or shutdown.

Jobs live in the bot, not in its connection: they keep running across reconnects (a job
that sends while the bot reconnects waits for the connection, like any send).
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock

log = logging.getLogger("roomz_bots")


@dataclass(order=True)
class Job:
    """A scheduled call; ``cancel()`` stops it."""

    due: float
    seq: int
    func: Callable[[], Any] = field(compare=False)
    every: float | None = field(default=None, compare=False)
    owner: str = field(default="", compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Never run this job again."""
        self.cancelled = True


class Scheduler:
    """Runs due jobs in one task; each run is a task of its own, so a slow job delays no other."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._jobs: list[Job] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()

    def after(self, seconds: float, func: Callable[[], Any], *, owner: str = "") -> Job:
        """Run ``func`` once, ``seconds`` from now."""
        return self.at(self.clock.time() + seconds, func, owner=owner)

    def at(self, when: float, func: Callable[[], Any], *, owner: str = "") -> Job:
        """Run ``func`` once at the wall-clock time ``when`` (right away if it has passed)."""
        return self._add(Job(when, next(self._seq), func, owner=owner))

    def every(self, seconds: float, func: Callable[[], Any], *, owner: str = "") -> Job:
        """Run ``func`` every ``seconds``, the first time ``seconds`` from now."""
        if seconds <= 0:
            raise ValueError(f"every() needs a positive interval, got {seconds}")
        return self._add(Job(self.clock.time() + seconds, next(self._seq), func,
                             every=seconds, owner=owner))

    def _add(self, job: Job) -> Job:
        heapq.heappush(self._jobs, job)
        self._changed.set()
        return job

    def start(self) -> None:
        """Begin running jobs as they fall due."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="roomz-bots-scheduler")

    async def _run(self) -> None:
        while True:
            while self._jobs and self._jobs[0].cancelled:
                heapq.heappop(self._jobs)
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
            task = asyncio.create_task(self._call(job))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _call(self, job: Job) -> None:
        try:
            result = job.func()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("scheduled job %s of plugin %s raised",
                          getattr(job.func, "__qualname__", job.func), job.owner or "?")

    async def stop(self) -> None:
        """Cancel every job and wait for running ones to end."""
        for job in self._jobs:
            job.cancel()
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
