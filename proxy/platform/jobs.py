"""The one job runner: periodic jobs, and work spawned off the request path, both drained on shutdown.

- :meth:`JobRunner.spawn` runs a coroutine in the background (a cache write, an embedding upsert) and keeps
  track of it, optionally in a named group (``flush("semantic")`` waits for that group only); a failure is
  logged, never raised into a request.
- :meth:`JobRunner.start` runs each :class:`~proxy.component.Job` on its own schedule: every ``every``
  seconds after the previous run ended (so a slow run never overlaps the next), once at start when asked.
  A job that raises is logged and runs again at its next turn: periodic work never dies.
- :meth:`JobRunner.stop` cancels the periodic jobs (again until they end: :mod:`proxy.platform.tasks`) and
  waits (bounded) for spawned work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from proxy.component import Job
from proxy.platform.tasks import cancel_and_wait, stop_if_cancelled

logger = logging.getLogger("cachegate.jobs")
LOG_EVERY = 60.0


class JobRunner:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._groups: dict[str, set[asyncio.Task[Any]]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._last_logged: dict[str, float] = {}

    # -- work off the request path ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], *, group: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        if group is not None:
            members = self._groups.setdefault(group, set())
            members.add(task)
            task.add_done_callback(members.discard)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    def pending(self, group: str | None = None) -> int:
        return len(self._tasks if group is None else self._groups.get(group, ()))

    async def flush(self, group: str | None = None, *, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for the work spawned so far, or for that of one group."""
        tasks = set(self._tasks if group is None else self._groups.get(group, ()))
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for spawned work (up to ``timeout``), then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        await cancel_and_wait(*pending)

    # -- periodic jobs --------------------------------------------------------------------------------

    def start(self, jobs: Sequence[Job]) -> None:
        loop = asyncio.get_running_loop()
        self._loops += [loop.create_task(self._repeat(job), name=f"cachegate-job-{job.name}") for job in jobs]

    async def _repeat(self, job: Job) -> None:
        if job.at_start:
            await self._run_once(job)
        while True:
            await asyncio.sleep(job.every)
            await self._run_once(job)

    async def _run_once(self, job: Job) -> None:
        try:
            await job.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            now = time.monotonic()
            if now - self._last_logged.get(job.name, -LOG_EVERY) >= LOG_EVERY:  # an outage does not flood the log
                self._last_logged[job.name] = now
                logger.exception("job %s failed; it runs again in %gs", job.name, job.every)
        stop_if_cancelled()  # the run (the one at start too) lost a cancellation meant for this loop

    async def stop(self, timeout: float = 5.0) -> None:
        loops, self._loops = self._loops, []
        await cancel_and_wait(*loops)  # a job's library may lose the first cancellation (see that module)
        await self.drain(timeout)
