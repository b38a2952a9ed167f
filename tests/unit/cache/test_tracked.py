"""The local copy of Redis on its own: what it keeps, when, and what voids it (its tracking is a flag here;
tests/integration/platform/test_redis_tracking.py runs it on a real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from proxy.cache import tracked
from proxy.cache.memory import MemoryBackend
from proxy.cache.tracked import TrackedCopy
from proxy.platform.tracking import Sink


class Flag:
    """A :class:`~proxy.platform.tracking.Tracking` whose liveness the test sets."""

    def __init__(self, live: bool = True) -> None:
        self.live = live
        self.sinks: list[Sink] = []

    def attach(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"live": self.live}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flag() -> Flag:
    return Flag()


@pytest.fixture
def copy(flag: Flag, clock: Clock) -> TrackedCopy:
    return TrackedCopy(MemoryBackend(10**6, clock=clock), flag)


async def fetched(copy: TrackedCopy, key: str, value: bytes, ttl: int = 60) -> bytes | None:
    """What ExactCache does on a local miss that Redis has: the miss, then the promotion, in one task."""
    assert await copy.get(key) is None
    await copy.set(key, value, ttl)
    return await copy.get(key)


def in_task(step: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
    return asyncio.get_running_loop().create_task(step())


async def test_it_attaches_itself_as_its_tracking_sink(copy: TrackedCopy, flag: Flag) -> None:
    assert flag.sinks == [copy]
    assert copy.name == "redis-local" and copy.remote is False


async def test_a_promotion_after_a_miss_is_kept(copy: TrackedCopy) -> None:
    assert await copy.get("k") is None
    assert await copy.set("k", b"one", 60) is True  # kept: the exact tier counts it as this level's set
    assert await copy.get("k") == b"one"
    assert await copy.usage() == (1, len("k") + len(b"one") + 400)


async def test_a_write_without_a_miss_is_not_kept_and_drops_the_copy_held(copy: TrackedCopy) -> None:
    assert await copy.set("fresh", b"new", 60) is False  # ExactCache.store writing a new entry: no set of ours
    assert await copy.get("fresh") is None
    assert await fetched(copy, "k", b"one") == b"one"
    await copy.set("k", b"two", 60)  # a refresh written through this level: the old copy must go
    assert copy.store._items == {}


async def test_an_invalidation_between_the_miss_and_the_promotion_voids_it(copy: TrackedCopy) -> None:
    assert await copy.get("k") is None
    copy.invalidate(["k"])  # the key changed in Redis while it was being read
    assert await copy.set("k", b"maybe old", 60) is False
    assert await copy.get("k") is None
    assert copy.voided == 1
    assert await fetched(copy, "k", b"new") == b"new"  # the next miss marks it again


async def test_an_invalidation_of_another_key_leaves_the_mark(copy: TrackedCopy) -> None:
    assert await copy.get("k") is None
    copy.invalidate(["other"])
    await copy.set("k", b"one", 60)
    assert await copy.get("k") == b"one"
    assert copy.voided == 0


async def test_a_flush_between_the_miss_and_the_promotion_voids_it(copy: TrackedCopy) -> None:
    assert await copy.get("k") is None
    copy.flush()
    await copy.set("k", b"maybe old", 60)
    assert await copy.get("k") is None
    assert copy.voided == 1


async def test_a_later_miss_of_another_request_does_not_vouch_for_an_earlier_read(copy: TrackedCopy) -> None:
    first_missed, go_on = asyncio.Event(), asyncio.Event()

    async def first() -> None:  # read before the change, promoted after the second request's miss
        assert await copy.get("k") is None
        first_missed.set()
        await go_on.wait()
        await copy.set("k", b"old", 60)

    async def second() -> None:  # read after the change
        assert await copy.get("k") is None
        await go_on.wait()
        await asyncio.sleep(0)
        await copy.set("k", b"new", 60)

    one = in_task(first)
    await first_missed.wait()
    copy.invalidate(["k"])
    two = in_task(second)
    await asyncio.sleep(0)
    go_on.set()
    await asyncio.gather(one, two)
    assert await copy.get("k") == b"new"


async def test_concurrent_misses_before_any_change_are_each_kept(copy: TrackedCopy) -> None:
    async def read(value: bytes) -> None:
        assert await copy.get("k") is None
        await asyncio.sleep(0)
        await copy.set("k", value, 60)

    await asyncio.gather(in_task(lambda: read(b"v")), in_task(lambda: read(b"v")))
    assert await copy.get("k") == b"v"
    assert copy._marks == {}


async def test_an_invalidation_drops_the_copy_held(copy: TrackedCopy) -> None:
    await fetched(copy, "a", b"1")
    await fetched(copy, "b", b"2")
    copy.invalidate(["a", "missing"])
    assert await copy.get("a") is None
    assert await copy.get("b") == b"2"
    assert copy.invalidated == 1
    copy.flush()
    assert await copy.usage() == (0, 0)


async def test_while_tracking_is_down_it_holds_nothing_and_is_bypassed(copy: TrackedCopy, flag: Flag) -> None:
    flag.live = False
    assert await copy.get("k") is None
    await copy.set("k", b"one", 60)
    assert copy.store._items == {} and copy._marks == {}
    flag.live = True
    assert await copy.get("k") is None  # marks only now
    flag.live = False  # lost between the miss and the promotion (the tracker flushes us too)
    await copy.set("k", b"one", 60)
    flag.live = True
    assert await copy.get("k") is None


async def test_a_copy_lives_no_longer_than_it_was_given(copy: TrackedCopy, clock: Clock) -> None:
    assert await fetched(copy, "k", b"one", ttl=5) == b"one"
    clock.now += 4.9
    assert await copy.get("k") == b"one"
    clock.now += 0.1
    assert await copy.get("k") is None
    assert copy.stats.evictions["expiry"] == 1


async def test_marks_are_bounded(copy: TrackedCopy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracked, "MAX_MARKED", 3)
    for key in ("a", "b", "c", "d"):
        assert await copy.get(key) is None
    assert list(copy._marks) == ["b", "c", "d"]  # the oldest went: its promotion is lost, never wrong
    await copy.set("a", b"1", 60)
    await copy.set("d", b"4", 60)
    assert await copy.get("a") is None
    assert await copy.get("d") == b"4"


async def test_delete_and_report(copy: TrackedCopy, flag: Flag) -> None:
    await fetched(copy, "cg:exact:a", b"1")
    assert [key async for key in copy.scan("cg:exact:*")] == ["cg:exact:a"]
    assert await copy.delete(["cg:exact:a", "cg:exact:b"]) == 1
    report = await copy.report()
    assert (report.entries, report.bound) == (0, 10**6)
    assert report.extra == {"tracking": "live", "invalidated": 0, "voided": 0}
    flag.live = False
    assert (await copy.report()).extra["tracking"] == "down"


async def test_a_peek_reads_the_copy_held_and_marks_nothing(copy: TrackedCopy, flag: Flag) -> None:
    assert copy.peek("k") is None
    assert copy._marks == {}  # a miss seen by a peek: the lookup that follows marks, in its own task
    assert await copy.set("k", b"one", 60) is False  # so a write after a peek alone is not kept
    assert await fetched(copy, "k", b"one") == b"one"
    assert copy.peek("k") == b"one"
    flag.live = False  # tracking lost: the copy is not to be trusted, a peek says nothing
    assert copy.peek("k") is None
