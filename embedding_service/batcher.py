"""Micro-batching: many small concurrent embed calls become few large model calls.

A transformer on the CPU does 32 short texts in one call several times faster than in 32 calls, so
concurrent requests are gathered for a short window (or until the batch is full) and encoded together
on one worker thread; each caller then gets its own slice back. While a batch encodes, the next one
gathers, so under load batches grow by themselves and an idle service adds only the window to latency.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

EncodeFn = Callable[[list[str]], list[list[float]]]


class BatcherClosedError(RuntimeError):
    """The batcher is not running (not started yet, or stopped)."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[list[list[float]]] = field(repr=False)
    queued_at: float = 0.0


class _Signal(enum.Enum):
    """What :meth:`MicroBatcher._next_job` returns instead of a job."""

    WINDOW_CLOSED = enum.auto()
    STOP = enum.auto()  # stop() queued its marker (a None) after every job it accepted


class MicroBatcher:
    """Gathers concurrent :meth:`embed` calls into batches of at most ``max_batch`` texts."""

    def __init__(self, encode: EncodeFn, *, window_ms: float = 2.0, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if window_ms < 0:
            raise ValueError("window_ms must not be negative")
        self._encode = encode
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._accepting = False
        # Totals since start, for /health and the benchmark: texts / batches is the mean batch size.
        self.batches_encoded = 0
        self.texts_encoded = 0

    @property
    def running(self) -> bool:
        return self._accepting

    async def start(self) -> None:
        if self._worker is not None:
            return
        # One thread: the model is one CPU-bound resource, and a dedicated thread cannot be starved by
        # other to_thread work in the default executor.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-batch")
        self._worker = asyncio.create_task(self._run(), name="embedding-micro-batcher")
        self._accepting = True

    async def stop(self, *, drain: bool = True) -> None:
        """Stop accepting; encode what is queued (``drain``) or fail it with BatcherClosedError."""
        if self._worker is None:
            return
        self._accepting = False
        if not drain:
            self._fail_queued(BatcherClosedError("embedding batcher stopped"))
        self._queue.put_nowait(None)  # the worker ends when it reaches this, after what came before
        try:
            await self._worker
        finally:
            self._fail_queued(BatcherClosedError("embedding batcher stopped"))
            self._worker = None
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for ``texts`` in order. Raises what the encode function raised for this batch."""
        if not self._accepting:
            raise BatcherClosedError("embedding batcher is not running")
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        items = list(texts)
        # A request larger than a batch is split so that no single batch exceeds max_batch.
        now = loop.time()
        jobs = [_Job(items[start:start + self.max_batch], loop.create_future(), now)
                for start in range(0, len(items), self.max_batch)]
        for job in jobs:
            self._queue.put_nowait(job)
        try:
            parts = await asyncio.gather(*(job.future for job in jobs))
        except BaseException:
            for job in jobs:
                job.future.cancel()  # the worker skips cancelled jobs that are still queued
            raise
        return [vector for part in parts for vector in part]

    async def _run(self) -> None:
        stop_seen = False
        while not stop_seen:
            first = await self._queue.get()
            if first is None:
                return
            if first.future.done():
                continue  # its caller was cancelled while it waited
            batch, size = [first], len(first.texts)
            # The window counts from when the first caller queued, not from now: a caller who already
            # waited for the previous batch to encode is not made to wait again; what queued meanwhile
            # still joins, since the queue is drained before the deadline is looked at.
            deadline = first.queued_at + self.window
            while size < self.max_batch:
                job = await self._next_job(deadline)
                if job is _Signal.WINDOW_CLOSED:
                    break
                if job is _Signal.STOP:
                    stop_seen = True  # nothing can be queued behind the marker: this batch is the last
                    break
                if size + len(job.texts) > self.max_batch:
                    await self._encode_batch(batch)
                    batch, size = [], 0
                batch.append(job)
                size += len(job.texts)
            await self._encode_batch(batch)

    async def _next_job(self, deadline: float) -> _Job | _Signal:
        """The next live queued job if one comes before ``deadline``."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return _Signal.WINDOW_CLOSED
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    return _Signal.WINDOW_CLOSED
            if job is None:
                return _Signal.STOP
            if not job.future.done():
                return job

    async def _encode_batch(self, batch: list[_Job]) -> None:
        live = [job for job in batch if not job.future.done()]
        if not live:
            return
        texts = [text for job in live for text in job.texts]
        loop = asyncio.get_running_loop()
        try:
            self.batches_encoded += 1
            self.texts_encoded += len(texts)
            vectors = await loop.run_in_executor(self._executor, self._encode, texts)
            if len(vectors) != len(texts):
                raise RuntimeError(f"encode returned {len(vectors)} vectors for {len(texts)} texts")
        except Exception as exc:
            logger.debug("batch of %d texts failed: %r", len(texts), exc)
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in live:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result(vectors[start:end])
            start = end

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if job is not None and not job.future.done():
                job.future.set_exception(exc)
