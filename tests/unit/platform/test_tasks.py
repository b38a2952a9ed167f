"""Stopping tasks that lose a cancellation: the helper, the job runner and the Redis tracker use it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from proxy.component import Job
from proxy.platform.jobs import JobRunner
from proxy.platform.tasks import cancel_and_wait, complete, stop_if_cancelled
from proxy.platform.tracking import Tracker


async def loses_one_cancellation(started: asyncio.Event) -> None:
    """What a library that catches a cancellation does to its caller: it carries on to its next await."""
    started.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(60)
    await asyncio.sleep(60)


async def test_a_task_that_loses_a_cancellation_is_cancelled_again_until_it_ends() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(loses_one_cancellation(started))
    await started.wait()
    task.cancel()
    await asyncio.wait({task}, timeout=0.2)
    assert not task.done()  # one cancellation was not enough: the task went back to sleep
    async with asyncio.timeout(5):
        await cancel_and_wait(task, again_every=0.05)
    assert task.cancelled()


async def test_ended_tasks_and_their_failures_are_dropped_quietly() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    failed, finished = asyncio.create_task(fails()), asyncio.create_task(asyncio.sleep(0))
    await asyncio.wait({failed, finished})
    await cancel_and_wait(failed, finished)  # nothing raised
    await cancel_and_wait()  # nothing to stop
    assert isinstance(failed.exception(), ValueError) and finished.result() is None


async def test_the_job_runner_stops_a_job_whose_run_lost_its_cancellation() -> None:
    running = asyncio.Event()

    async def run() -> None:
        running.set()
        with contextlib.suppress(asyncio.CancelledError):  # as a Redis Cluster write was seen to, in CI
            await asyncio.sleep(60)

    runner = JobRunner()
    runner.start([Job("loses-it", 0.01, run)])
    await running.wait()
    async with asyncio.timeout(5):
        await runner.stop()


async def test_a_job_whose_run_at_start_lost_its_cancellation_stops_at_once() -> None:
    """One cancellation ends the loop: it does not go to sleep for ``every`` (an hour) until the next one."""
    running = asyncio.Event()

    async def run() -> None:
        running.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)

    runner = JobRunner()
    runner.start([Job("at-start", 3600, run, at_start=True)])
    await running.wait()
    (loop,) = runner._loops
    loop.cancel()
    await asyncio.wait({loop}, timeout=5)
    assert loop.cancelled()


class LosesACancellation:
    """A tracking connection, established, whose read of the next message loses one cancellation."""

    def __init__(self) -> None:
        self.replies: list[Any] = [7, b"OK", [b"subscribe", b"__redis__:invalidate", 1]]
        self.reading = asyncio.Event()

    async def connect(self) -> None:
        return None

    async def send_command(self, *args: Any) -> None:
        return None

    async def read_response(self, timeout: float | None = None) -> Any:
        if self.replies:
            return self.replies.pop(0)
        await loses_one_cancellation(self.reading)

    async def disconnect(self, nowait: bool = False) -> None:
        return None


async def test_a_tracker_whose_read_lost_its_cancellation_stops() -> None:
    connection = LosesACancellation()

    async def connect() -> LosesACancellation:
        return connection

    tracker = Tracker(connect, prefix="cachegate:", timeout=1.0, heartbeat=60.0)
    tracker.start()
    await connection.reading.wait()
    assert tracker.live
    async with asyncio.timeout(5):
        await tracker.stop()
    assert not tracker.live


async def test_a_loop_that_lost_its_cancellation_stops_at_its_next_turn() -> None:
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            turns += 1
            with contextlib.suppress(asyncio.CancelledError):  # lost: the loop goes on
                await asyncio.sleep(60)
            stop_if_cancelled()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled() and turns == 1


async def test_a_clean_up_completes_though_the_task_is_cancelled_again() -> None:
    recorded: list[str] = []

    async def record() -> str:
        await asyncio.sleep(0.3)  # longer than the time between two cancellations below
        recorded.append("interrupted")
        return "done"

    async def stopping(started: asyncio.Event) -> None:
        try:
            started.set()
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            assert await complete(record()) == "done"
            raise

    started = asyncio.Event()
    task = asyncio.create_task(stopping(started))
    await started.wait()
    async with asyncio.timeout(5):
        await cancel_and_wait(task, again_every=0.05)
    assert task.cancelled() and recorded == ["interrupted"]
