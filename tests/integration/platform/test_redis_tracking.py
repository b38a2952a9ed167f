"""The exact tier's local copy of Redis on a real redis-server: two replicas (two Redis homes, each with its
tracking connection and its copy in front of Redis), one changing what the other holds.

Every wait is for a condition (the invalidation arrived, tracking is back), polled until a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.cache.redis_backend import RedisBackend
from proxy.cache.tracked import TrackedCopy
from proxy.contracts import NullObserver
from proxy.core.canonical import Tenant, exact_key
from proxy.platform.failopen import FailOpen
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from proxy.platform.tracking import Tracker
from tests.support.servers import RedisServer

PREFIX = "cg:"
DEADLINE = 10.0


def entry(text: str, ttl: int = 60) -> CachedResponse:
    completion = {"id": "c1", "object": "chat.completion", "model": "m",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    return CachedResponse.from_completion(completion, model="m", stored_at=time.time(), ttl=ttl)


def text(found: CachedResponse | None) -> str | None:
    return None if found is None else str(found.completion["choices"][0]["message"]["content"])


KEY = exact_key(PREFIX, Tenant("owner", ""), "m", "question")


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.005)


@dataclass
class Replica:
    home: RedisHome
    copy: TrackedCopy
    redis: RedisBackend
    exact: ExactCache

    @property
    def tracker(self) -> Tracker:
        tracking = self.copy.tracking
        assert isinstance(tracking, Tracker)
        return tracking

    def holds(self, key: str) -> bool:
        return key in self.copy.store._items

    async def live(self) -> None:
        await until(lambda: self.copy.live, "tracking to be established")

    async def stop(self) -> None:
        await self.exact.stop()
        await self.home.stop()


async def replica(url: str, *, timeout: float = 1.0, cooldown: float = 1.0) -> Replica:
    home = RedisHome(parse_redis_url(url), timeout=timeout, cooldown=cooldown)
    copy = TrackedCopy(MemoryBackend(10**6), home.tracking(f"{PREFIX}exact:"))
    redis = RedisBackend(home)
    exact = ExactCache([copy, redis], prefix=PREFIX, observer=NullObserver(), failopen=FailOpen(NullObserver()))
    await home.start()
    made = Replica(home, copy, redis, exact)
    await made.live()
    return made


async def announced(change: Callable[[], Awaitable[object]], *replicas: Replica) -> None:
    """Make a change to exact keys, and wait until every replica's tracking heard of it (a read racing the
    announcement would not be kept: correct, but not what these tests look at)."""
    before = [each.tracker.keys for each in replicas]
    await change()
    await until(lambda: all(each.tracker.keys > seen for each, seen in zip(replicas, before, strict=True)),
                "the change's invalidation")


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = await replica(redis_url), await replica(redis_url)
    yield a, b
    await a.stop()
    await b.stop()


async def test_a_redis_hit_is_kept_and_served_locally(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    assert text(await a.exact.lookup(KEY)) == "one"  # from Redis, then kept
    assert a.holds(KEY)
    assert (a.copy.stats.misses, a.redis.stats.hits) == (1, 1)
    assert text(await a.exact.lookup(KEY)) == "one"
    assert (a.copy.stats.hits, a.redis.stats.hits) == (1, 1)  # the second read did not reach Redis


async def test_what_another_replica_overwrites_or_deletes_is_seen(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    assert text(await a.exact.lookup(KEY)) == "one"
    assert a.holds(KEY)
    await announced(lambda: b.exact.store(KEY, entry("two")), a)
    assert not a.holds(KEY)
    assert text(await a.exact.lookup(KEY)) == "two"
    assert a.holds(KEY)
    await announced(lambda: b.exact.delete([KEY]), a)
    assert not a.holds(KEY)
    assert await a.exact.lookup(KEY) is None


async def test_our_own_write_is_not_kept_and_invalidates_our_copy(pair: tuple[Replica, Replica]) -> None:
    a, _ = pair
    await a.exact.store(KEY, entry("one"))
    assert not a.holds(KEY)  # a write is not kept: Redis announces it to us like anyone's
    assert text(await a.exact.lookup(KEY)) == "one"
    seen = a.tracker.keys
    await a.exact.store(KEY, entry("two"))
    assert not a.holds(KEY)  # dropped at once, before the announcement
    await until(lambda: a.tracker.keys > seen, "our own write's invalidation")
    assert text(await a.exact.lookup(KEY)) == "two"


async def test_flushall_empties_every_copy(pair: tuple[Replica, Replica], redis_server: RedisServer) -> None:
    a, b = pair
    await announced(lambda: a.exact.store(KEY, entry("one")), a, b)
    for each in pair:
        assert text(await each.exact.lookup(KEY)) == "one"
    flushes = a.tracker.flushes, b.tracker.flushes
    with redis_server.client() as client:
        client.flushall()
    await until(lambda: (a.tracker.flushes, b.tracker.flushes) > flushes and not a.holds(KEY) and not b.holds(KEY),
                "FLUSHALL's nil invalidation")
    assert await a.exact.lookup(KEY) is None
    assert a.copy.live  # a flush message keeps the connection


async def test_an_entry_expiring_in_redis_is_dropped(pair: tuple[Replica, Replica], redis_server: RedisServer) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    # Redis ends the entry's life early (the PEXPIRE is announced too), after which a read keeps a copy for
    # what the entry said its life was: only Redis's announcement of the expiry ends it (an eviction the same)
    with redis_server.client() as client:
        await announced(lambda: asyncio.to_thread(client.pexpire, KEY, 1000), a)
    assert text(await a.exact.lookup(KEY)) == "one"
    assert a.holds(KEY)
    await until(lambda: not a.holds(KEY), "the expiry's invalidation")
    assert await a.exact.lookup(KEY) is None


async def test_an_invalidation_while_a_fetch_is_in_flight_voids_its_promotion(
        pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    # what ExactCache._find does, cut where the race falls: the copy misses, Redis answers "one"...
    assert await a.copy.get(KEY) is None
    old = await a.redis.get(KEY)
    # ...and before the promotion, another replica overwrites the key and its announcement arrives
    await b.exact.store(KEY, entry("two"))
    await until(lambda: a.copy.voided == 1, "the overwrite's invalidation")
    assert old is not None
    await a.copy.set(KEY, old, 60)
    assert not a.holds(KEY)  # the old value was not kept
    assert text(await a.exact.lookup(KEY)) == "two"


async def test_a_killed_tracking_connection_drops_the_copy_and_comes_back(
        pair: tuple[Replica, Replica], redis_server: RedisServer) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    assert text(await a.exact.lookup(KEY)) == "one"
    assert a.holds(KEY)
    connects = a.tracker.connects
    with redis_server.client() as client:
        client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # both replicas' tracking connections
    await until(lambda: a.tracker.failures >= 1, "the loss to be noticed")
    assert not a.holds(KEY)  # flushed when it went, so nothing unannounced is ever served
    await b.exact.store(KEY, entry("two"))  # a change no tracking connection may have heard
    assert text(await a.exact.lookup(KEY)) == "two"
    await until(lambda: a.tracker.connects > connects and a.copy.live, "tracking to be re-established")
    assert text(await a.exact.lookup(KEY)) == "two"
    assert text(await a.exact.lookup(KEY)) == "two"
    assert a.holds(KEY)
    assert a.tracker.status()["last_error"] is not None
    await a.home.tracking(f"{PREFIX}exact:").check()  # /health sees it up again


async def test_redis_down_fails_open_and_tracking_returns_with_it() -> None:
    with RedisServer() as server:
        a = await replica(server.url, timeout=0.3, cooldown=0)  # back as soon as it answers
        try:
            await announced(lambda: a.exact.store(KEY, entry("one")), a)
            assert text(await a.exact.lookup(KEY)) == "one"
            assert a.holds(KEY)
            server.kill()
            await until(lambda: not a.copy.live, "the loss of Redis to be noticed")
            assert not a.holds(KEY)
            assert await a.exact.lookup(KEY) is None  # a miss, not an error: the request goes upstream
            with pytest.raises(Exception, match="not established"):
                await a.home.tracking(f"{PREFIX}exact:").check()
            server.start()  # an empty Redis again, on the same port
            await a.live()
            assert await a.exact.lookup(KEY) is None
            await announced(lambda: a.exact.store(KEY, entry("two")), a)
            assert text(await a.exact.lookup(KEY)) == "two"
            assert a.holds(KEY)
        finally:
            await a.stop()
