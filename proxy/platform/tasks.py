"""Stopping a task for good: cancel it, and cancel it again, until it has ended.

A cancellation can be lost on its way through code the task awaits. Seen in CI: a periodic job writing to a
Redis Cluster took its cancellation, carried on to its next ``asyncio.sleep`` and slept there, so the
shutdown that waited for it waited for ever (and a Redis tracker did the same inside redis-py's read).
Python 3.11's ``asyncio.wait_for`` loses one too when the result and the cancellation arrive together. A
task asked to stop is therefore cancelled again every :data:`AGAIN_EVERY` seconds until it ends: the next
cancellation finds it at another ``await``, where it is not lost. A loop that spends most of its time in
such code (a job that runs again at once) also asks :func:`stop_if_cancelled` after each turn. The
bounded clean-up a cancelled task does before it stops (recording that it was interrupted) goes through
:func:`complete`, so the cancellations that follow the first do not cut it short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds between one cancellation of a task that has not ended and the next.
AGAIN_EVERY = 0.5


async def cancel_and_wait(*tasks: asyncio.Future[Any], again_every: float = AGAIN_EVERY) -> None:
    """Cancel ``tasks`` and return once every one has ended. What they returned or raised is dropped (and
    so not logged as never retrieved): the caller asked them to stop."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=again_every)
        for task in pending:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stop_if_cancelled() -> None:
    """Raise :class:`asyncio.CancelledError` when the current task was asked to stop and the request was
    lost (caught by code it awaited, which then returned as if nothing had happened)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def complete(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even while the current task is cancelled again meanwhile; for the
    clean-up of a cancelled task, which must be bounded by its own timeouts (the caller re-raises after)."""
    inner = asyncio.ensure_future(awaitable)
    while True:
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if inner.done():  # the clean-up itself was cancelled, or ended as this one came
                return inner.result()
