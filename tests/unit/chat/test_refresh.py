"""The refresher on its own: when a hit is due a refresh, one per key at a time, at most N a minute, and
only for requests whose answer would be stored again."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from proxy.cache.entry import CachedResponse
from proxy.chat.refresh import LocalLease, Refresher, RefreshPolicy, SharedLease, storable
from proxy.core.request import ChatRequest, ChatRequestParser
from proxy.errors import BackendError
from proxy.platform.locks import MemoryLocks


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def request(headers: dict[str, str] | None = None, **body: Any) -> ChatRequest:
    parser = ChatRequestParser(prefix="cg:", upstream="http://up", shared=False, secret=lambda: b"s")
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})
    return parser.parse(raw, [(k.encode(), v.encode()) for k, v in (headers or {}).items()])


def entry(stored_at: float = 0.0, ttl: int = 100) -> CachedResponse:
    return CachedResponse(b"{}", "m", stored_at, ttl)


class Spawned:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def __call__(self, coro: Any) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)


def test_what_would_be_stored_again() -> None:
    assert storable(request(), 0.7)
    assert storable(request(temperature=0.7), 0.7)
    assert not storable(request(temperature=1.2), 0.7)
    assert storable(request(temperature=1.2, seed=7), 0.7)
    assert not storable(request({"cache-control": "no-store"}), 0.7)
    assert not storable(request({"x-bypass-cache": "true"}), 0.7)


async def test_refresh_ahead_after_enough_hits_near_the_end_of_life() -> None:
    spawn, calls = Spawned(), []

    async def refresh() -> None:
        calls.append(1)

    refresher = Refresher(RefreshPolicy(ahead=True, min_hits=3, fraction=0.1), spawn=spawn, clock=Clock())
    asked = request()
    assert not refresher.consider(asked, entry(), stale=False, now=95.0, refresh=refresh)  # 1 hit
    assert not refresher.consider(asked, entry(), stale=False, now=50.0, refresh=refresh)  # 2 hits, half left
    assert not refresher.consider(asked, entry(), stale=False, now=89.0, refresh=refresh)  # 3 hits, 11 % left
    assert refresher.consider(asked, entry(), stale=False, now=91.0, refresh=refresh)  # 4 hits, 9 % left
    await spawn.settle()
    assert calls == [1] and refresher.counts["refreshed"] == 1
    assert not refresher.consider(asked, entry(stored_at=91.0), stale=False, now=185.0, refresh=refresh)  # a new
    # entry starts counting its hits again


async def test_off_ahead_but_stale_entries_are_refreshed_unless_not_storable() -> None:
    spawn = Spawned()
    refresher = Refresher(RefreshPolicy(ahead=False), spawn=spawn, clock=Clock())

    async def refresh() -> None:
        return None

    assert not refresher.consider(request(), entry(), stale=False, now=99.0, refresh=refresh)
    assert refresher.consider(request(), entry(), stale=True, now=130.0, refresh=refresh)
    assert not refresher.consider(request(temperature=2), entry(), stale=True, now=130.0, refresh=refresh)
    await spawn.settle()


async def test_one_refresh_per_key_and_a_budget_per_minute() -> None:
    spawn, clock, gate = Spawned(), Clock(), asyncio.Event()

    async def slow() -> None:
        await gate.wait()

    refresher = Refresher(RefreshPolicy(max_per_minute=2), spawn=spawn, clock=clock)
    assert refresher.start("a", slow)
    assert not refresher.start("a", slow)  # a is being refreshed
    assert refresher.start("b", slow)
    assert not refresher.start("c", slow)  # two started in this minute
    clock.now += 60
    gate.set()
    await spawn.settle()
    assert refresher.start("c", slow)
    await spawn.settle()
    assert refresher.counts == {"started": 3, "refreshed": 3, "failed": 0, "capped": 1, "busy": 1}


async def test_a_failed_refresh_is_counted_and_frees_the_key() -> None:
    spawn = Spawned()
    lease = LocalLease()

    async def broken() -> None:
        raise RuntimeError("upstream 503")

    refresher = Refresher(RefreshPolicy(), spawn=spawn, lease=lease, clock=Clock())
    assert refresher.start("a", broken)
    await spawn.settle()
    assert refresher.counts["failed"] == 1 and not lease.held
    assert refresher.start("a", broken)
    await spawn.settle()


async def test_a_lease_held_elsewhere_makes_it_busy() -> None:
    spawn, lease = Spawned(), LocalLease()
    await lease.acquire("a")  # as another replica would hold it

    async def refresh() -> None:
        raise AssertionError("must not run")

    refresher = Refresher(RefreshPolicy(), spawn=spawn, lease=lease, clock=Clock())
    assert refresher.start("a", refresh)
    await spawn.settle()
    assert refresher.counts["busy"] == 1 and lease.held == {"a"}


class Unreachable:
    """Locks whose Redis does not answer."""

    async def acquire(self, name: str, ttl: float) -> None:
        raise BackendError("redis", "timed out")

    async def release(self, lease: Any) -> bool:
        raise BackendError("redis", "timed out")


async def test_replicas_sharing_locks_refresh_a_key_once() -> None:
    shared = MemoryLocks()
    key = request().key
    first, second = SharedLease(shared, prefix="cg:", ttl=60), SharedLease(shared, prefix="cg:", ttl=60)
    assert await first.acquire(key)
    assert not await second.acquire(key)  # held by the other replica
    assert not await first.acquire(key)  # and by this one, once
    digest = key.rpartition("{")[2].rstrip("}")
    assert await shared.state(f"cg:lock:refresh:{{{digest}}}") == "held"  # beside the entry: its hash tag
    await first.release(key)
    assert await shared.state(f"cg:lock:refresh:{{{digest}}}") is None
    assert await second.acquire(key)


async def test_a_shared_lease_without_redis_refreshes_alone() -> None:
    lease = SharedLease(Unreachable(), prefix="cg:", ttl=60)  # type: ignore[arg-type]
    assert await lease.acquire("cg:exact:o:-:m:{d}")
    assert not await lease.acquire("cg:exact:o:-:m:{d}")  # still one at a time in this process
    await lease.release("cg:exact:o:-:m:{d}")  # nothing to release on Redis, and no error
    assert await lease.acquire("cg:exact:o:-:m:{d}")


async def test_two_refreshers_on_shared_locks_make_one_upstream_call() -> None:
    shared, spawn, calls = MemoryLocks(), Spawned(), []
    gate = asyncio.Event()

    async def refresh() -> None:
        calls.append(1)
        await gate.wait()

    one = Refresher(RefreshPolicy(), spawn=spawn, lease=SharedLease(shared, prefix="cg:", ttl=60), clock=Clock())
    two = Refresher(RefreshPolicy(), spawn=spawn, lease=SharedLease(shared, prefix="cg:", ttl=60), clock=Clock())
    assert one.start("cg:k:{d}", refresh) and two.start("cg:k:{d}", refresh)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gate.set()
    await spawn.settle()
    assert calls == [1]
    assert one.counts["refreshed"] + two.counts["refreshed"] == 1 and one.counts["busy"] + two.counts["busy"] == 1
