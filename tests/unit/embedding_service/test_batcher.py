"""MicroBatcher with a tiny fake encode function: batching, slicing, failure isolation, lifecycle."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest

from embedding_service.batcher import BatcherClosedError, MicroBatcher


class FakeEncoder:
    """Maps text "7" to [7.0, 49.0]; records every call; raises for a text "boom"."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.threads: set[str] = set()
        self.gate: threading.Event | None = None

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        if "boom" in texts:
            raise ValueError("boom in batch")
        return [[float(text), float(text) ** 2] for text in texts]


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder()


async def started(batcher: MicroBatcher) -> AsyncIterator[MicroBatcher]:
    await batcher.start()
    try:
        yield batcher
    finally:
        await batcher.stop()


@pytest.fixture
async def batcher(encoder: FakeEncoder) -> AsyncIterator[MicroBatcher]:
    async for running in started(MicroBatcher(encoder, window_ms=20, max_batch=64)):
        yield running


async def test_concurrent_calls_share_few_encode_calls_and_each_gets_its_own_vectors(
        batcher: MicroBatcher, encoder: FakeEncoder) -> None:
    requests = [[str(i), str(i + 100)] for i in range(20)]
    results = await asyncio.gather(*(batcher.embed(texts) for texts in requests))
    assert len(encoder.calls) < 5  # 20 callers, 40 texts: gathered within one 20 ms window
    for texts, vectors in zip(requests, results, strict=True):
        assert vectors == [[float(t), float(t) ** 2] for t in texts]
    assert sorted(t for call in encoder.calls for t in call) == sorted(t for r in requests for t in r)


async def test_a_single_request_on_an_idle_loop_goes_through_after_the_window(
        batcher: MicroBatcher, encoder: FakeEncoder) -> None:
    began = time.perf_counter()
    assert await batcher.embed(["3"]) == [[3.0, 9.0]]
    assert time.perf_counter() - began < 1.0
    assert encoder.calls == [["3"]]


async def test_an_exception_fails_only_the_callers_of_that_batch(encoder: FakeEncoder) -> None:
    async for batcher in started(MicroBatcher(encoder, window_ms=20, max_batch=2)):
        # Queued in this order, the batches are [1, boom] and [3, 4].
        results = await asyncio.gather(*(batcher.embed([t]) for t in ["1", "boom", "3", "4"]),
                                       return_exceptions=True)
        assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
        assert results[2:] == [[[3.0, 9.0]], [[4.0, 16.0]]]
        assert await batcher.embed(["5"]) == [[5.0, 25.0]]  # the batcher survives a failed batch


async def test_batches_never_exceed_max_batch_and_large_requests_are_split(encoder: FakeEncoder) -> None:
    async for batcher in started(MicroBatcher(encoder, window_ms=20, max_batch=4)):
        big = [str(i) for i in range(10)]
        small = await asyncio.gather(*(batcher.embed([str(i)]) for i in range(7)))
        assert await batcher.embed(big) == [[float(i), float(i) ** 2] for i in range(10)]
        assert small == [[[float(i), float(i) ** 2]] for i in range(7)]
        assert max(len(call) for call in encoder.calls) <= 4


async def test_encoding_runs_off_the_event_loop(encoder: FakeEncoder) -> None:
    encoder.delay = 0.2
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async for batcher in started(MicroBatcher(encoder, window_ms=1)):
        ticker = asyncio.create_task(tick())
        await batcher.embed(["1"])
        ticker.cancel()
    assert ticks >= 5  # a blocked loop would have ticked at most once during the 200 ms encode
    assert all(name.startswith("embed-batch") for name in encoder.threads)


async def test_stop_drains_what_is_queued_then_refuses(encoder: FakeEncoder) -> None:
    batcher = MicroBatcher(encoder, window_ms=50)
    await batcher.start()
    pending = [asyncio.create_task(batcher.embed([str(i)])) for i in range(5)]
    await asyncio.sleep(0)  # let them queue
    await batcher.stop()
    assert await asyncio.gather(*pending) == [[[float(i), float(i) ** 2]] for i in range(5)]
    with pytest.raises(BatcherClosedError):
        await batcher.embed(["1"])


async def test_stop_without_drain_fails_queued_callers_and_finishes_the_running_batch(
        encoder: FakeEncoder) -> None:
    encoder.gate = threading.Event()
    batcher = MicroBatcher(encoder, window_ms=0, max_batch=1)
    await batcher.start()
    running = asyncio.create_task(batcher.embed(["1"]))
    while not encoder.calls:  # wait until the first batch is on the worker thread
        await asyncio.sleep(0.005)
    queued = [asyncio.create_task(batcher.embed([str(i)])) for i in (2, 3)]
    await asyncio.sleep(0)
    stopping = asyncio.create_task(batcher.stop(drain=False))
    await asyncio.sleep(0.01)
    encoder.gate.set()
    await stopping
    assert await running == [[1.0, 1.0]]
    for task in queued:
        with pytest.raises(BatcherClosedError):
            await task
    assert encoder.calls == [["1"]]


async def test_a_cancelled_caller_is_skipped_without_hurting_others(encoder: FakeEncoder) -> None:
    async for batcher in started(MicroBatcher(encoder, window_ms=30)):
        doomed = asyncio.create_task(batcher.embed(["8"]))
        kept = asyncio.create_task(batcher.embed(["9"]))
        await asyncio.sleep(0)
        doomed.cancel()
        assert await kept == [[9.0, 81.0]]
        assert ["8"] not in encoder.calls and all("8" not in call for call in encoder.calls)


async def test_embedding_nothing_returns_nothing_and_calls_nothing(
        batcher: MicroBatcher, encoder: FakeEncoder) -> None:
    assert await batcher.embed([]) == []
    assert encoder.calls == []


async def test_embed_before_start_is_refused(encoder: FakeEncoder) -> None:
    with pytest.raises(BatcherClosedError):
        await MicroBatcher(encoder).embed(["1"])
