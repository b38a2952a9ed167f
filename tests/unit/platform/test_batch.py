"""Reads that arrive in one loop step share one fetch; each caller still gets its own value or error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from proxy.platform.batch import BatchedReads

STORE = {"a": b"1", "b": b"2", "c": b"3"}


class Fetcher:
    def __init__(self, error: Exception | None = None, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.error = error
        self.delay = delay

    async def __call__(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls.append(list(keys))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return [STORE.get(key) for key in keys]


def test_reads_of_one_step_share_one_fetch_and_a_repeated_key_is_asked_once() -> None:
    fetch = Fetcher()

    async def main() -> list[bytes | None]:
        reads = BatchedReads(fetch)
        return await asyncio.gather(reads.get("a"), reads.get("zz"), reads.get("a"), reads.get("c"))

    assert asyncio.run(main()) == [b"1", None, b"1", b"3"]
    assert fetch.calls == [["a", "zz", "c"]]


def test_reads_of_later_steps_are_fetched_again() -> None:
    fetch = Fetcher()

    async def main() -> None:
        reads = BatchedReads(fetch)
        assert await reads.get("a") == b"1"
        assert await reads.get("b") == b"2"

    asyncio.run(main())
    assert fetch.calls == [["a"], ["b"]]


def test_a_big_step_is_split_into_fetches_of_at_most_max_keys() -> None:
    fetch = Fetcher()

    async def main() -> None:
        reads = BatchedReads(fetch, max_keys=2)
        await asyncio.gather(*(reads.get(key) for key in ("a", "b", "c", "d", "e")))

    asyncio.run(main())
    assert fetch.calls == [["a", "b"], ["c", "d"], ["e"]]


def test_a_failed_fetch_fails_every_caller_of_that_step() -> None:
    fetch = Fetcher(error=ConnectionError("down"))

    async def main() -> list[object]:
        reads = BatchedReads(fetch)
        return await asyncio.gather(reads.get("a"), reads.get("b"), return_exceptions=True)

    results = asyncio.run(main())
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


def test_a_cancelled_caller_leaves_the_others_their_values() -> None:
    fetch = Fetcher(delay=0.05)

    async def main() -> bytes | None:
        reads = BatchedReads(fetch)
        first = asyncio.ensure_future(reads.get("a"))
        second = asyncio.ensure_future(reads.get("b"))
        await asyncio.sleep(0.01)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(main()) == b"2"


def test_drain_waits_for_fetches_under_way() -> None:
    fetch = Fetcher(delay=0.05)

    async def main() -> None:
        reads = BatchedReads(fetch)
        pending = asyncio.ensure_future(reads.get("a"))
        await asyncio.sleep(0.01)  # the fetch has started
        await reads.drain()
        assert pending.done() and pending.result() == b"1"

    asyncio.run(main())


def test_a_drain_gives_a_stuck_fetch_up_after_its_timeout() -> None:
    never = asyncio.Event()

    async def stuck(keys: Sequence[str]) -> list[bytes | BaseException | None]:
        await never.wait()  # a node that stopped answering, the fetch without a deadline of its own
        return [None for _ in keys]

    async def main() -> None:
        reads = BatchedReads(stuck)
        pending = asyncio.ensure_future(reads.get("a"))
        await asyncio.sleep(0.01)  # the fetch has started
        await reads.drain(timeout=0.05)  # returns: the fetch is cancelled, its reader told so
        assert pending.done() and pending.cancelled()

    asyncio.run(main())


def test_one_fetch_at_a_time_and_reads_arriving_meanwhile_go_together_next() -> None:
    fetch = Fetcher(delay=0.05)

    async def main() -> list[bytes | None]:
        reads = BatchedReads(fetch)
        first = asyncio.ensure_future(reads.get("a"))
        await asyncio.sleep(0.01)  # the first fetch is under way
        later = [asyncio.ensure_future(reads.get(key)) for key in ("b", "c")]
        await asyncio.sleep(0.01)
        assert len(fetch.calls) == 1  # nothing new is sent while a fetch is out
        return await asyncio.gather(first, *later)

    assert asyncio.run(main()) == [b"1", b"2", b"3"]
    assert fetch.calls == [["a"], ["b", "c"]]


def test_reads_still_waiting_when_the_fetcher_is_cancelled_do_not_hang() -> None:
    fetch = Fetcher(delay=10)

    async def main() -> list[object]:
        reads = BatchedReads(fetch)
        first = asyncio.ensure_future(reads.get("a"))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(reads.get("b"))
        await asyncio.sleep(0.01)
        assert reads._runner is not None
        reads._runner.cancel()  # as on shutdown
        return await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 1)

    assert [type(r) for r in asyncio.run(main())] == [asyncio.CancelledError, asyncio.CancelledError]
