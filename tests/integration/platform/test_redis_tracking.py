"""The exact tier's local copy of Redis on a real redis-server and a real cluster: two replicas (two Redis
homes, each with its tracking connection(s) and its copy in front of Redis), one changing what the other holds.

Every wait is for a condition (the invalidation arrived, tracking is back), polled until a deadline."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio.cluster import ClusterNode

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.cache.redis_backend import RedisBackend
from proxy.cache.tracked import TrackedCopy
from proxy.contracts import NullObserver
from proxy.core.canonical import Tenant, exact_key
from proxy.platform.cluster_tracking import ClusterTracking
from proxy.platform.failopen import FailOpen
from proxy.platform.redis import RedisHome
from proxy.platform.redis_cluster import ClusterHome
from proxy.platform.redis_url import parse_redis_url
from proxy.platform.tracking import Tracker
from tests.support.redis_cluster import LocalCluster
from tests.support.redis_homes import KINDS
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


async def promote(copy: TrackedCopy, value: bytes) -> None:
    """Hold ``value`` under KEY as a promotion does: a miss of the copy (its mark), then the value kept."""
    assert await copy.get(KEY) is None
    await copy.set(KEY, value, 60)


@dataclass
class Replica:
    home: RedisHome
    copy: TrackedCopy
    redis: RedisBackend
    exact: ExactCache

    @property
    def trackers(self) -> list[Tracker]:
        tracking = self.copy.tracking
        if isinstance(tracking, ClusterTracking):
            return list(tracking.trackers.values())
        assert isinstance(tracking, Tracker)
        return [tracking]

    def heard(self) -> tuple[int, int, int, int]:
        """(keys announced, flushes, failures, connects) over every tracking connection."""
        trackers = self.trackers
        return (sum(t.keys for t in trackers), sum(t.flushes for t in trackers), sum(t.failures for t in trackers),
                sum(t.connects for t in trackers))

    def holds(self, key: str) -> bool:
        return key in self.copy.store._items

    async def live(self) -> None:
        await until(lambda: self.copy.live, "tracking to be established")

    async def stop(self) -> None:
        await self.exact.stop()
        await self.home.stop()


async def replica(url: str, *, timeout: float = 1.0, cooldown: float = 1.0) -> Replica:
    target = parse_redis_url(url)
    home = (ClusterHome if target.kind == "redis-cluster" else RedisHome)(target, timeout=timeout, cooldown=cooldown)
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
    before = [each.heard()[0] for each in replicas]
    await change()
    await until(lambda: all(each.heard()[0] > seen for each, seen in zip(replicas, before, strict=True)),
                "the change's invalidation")


class Server:
    """What a test does to the Redis behind the replicas, on one server or on every primary of a cluster."""

    def __init__(self, store: RedisServer | LocalCluster) -> None:
        self.store = store

    @property
    def url(self) -> str:
        return self.store.url

    def each(self, command: str, *args: object) -> None:
        store = self.store
        if isinstance(store, LocalCluster):
            for node in store.primaries():
                with store.node_client(node) as client:
                    client.execute_command(command, *args)
        else:
            with store.client() as client:
                client.execute_command(command, *args)

    async def pexpire(self, key: str, ms: int) -> None:
        store = self.store
        with store.client() as client:
            await asyncio.to_thread(client.pexpire, key, ms)


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> Server:
    if request.param == "redis-cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        return Server(cluster)
    request.getfixturevalue("redis_url")  # emptied
    return Server(request.getfixturevalue("redis_server"))


@pytest.fixture
async def pair(server: Server) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = await replica(server.url), await replica(server.url)
    yield a, b
    # Bounded: a stop that hangs (seen once in CI, after the killed-connection test on a cluster, not
    # reproduced since) errors the test instead of holding the whole run.
    async with asyncio.timeout(30):
        await a.stop()
        await b.stop()


async def test_a_redis_hit_is_kept_and_served_locally(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    assert text(await a.exact.lookup(KEY)) == "one"  # from Redis, then kept
    assert a.holds(KEY)
    assert (a.copy.stats.misses, a.redis.stats.hits) == (1, 1)
    # a set is an entry kept: b's write went through b's copy to Redis, only a's promotion stayed in a copy
    assert (b.copy.stats.sets, b.redis.stats.sets, a.copy.stats.sets, a.redis.stats.sets) == (0, 1, 1, 0)
    assert a.copy.stats.raw_bytes == b.redis.stats.raw_bytes > 0
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
    assert (a.copy.stats.sets, a.redis.stats.sets) == (0, 1)  # nor counted as kept
    assert text(await a.exact.lookup(KEY)) == "one"
    seen = a.heard()[0]
    await a.exact.store(KEY, entry("two"))
    assert not a.holds(KEY)  # dropped at once, before the announcement
    await until(lambda: a.heard()[0] > seen, "our own write's invalidation")
    assert text(await a.exact.lookup(KEY)) == "two"


async def test_flushall_empties_every_copy(pair: tuple[Replica, Replica], server: Server) -> None:
    a, b = pair
    await announced(lambda: a.exact.store(KEY, entry("one")), a, b)
    for each in pair:
        assert text(await each.exact.lookup(KEY)) == "one"
    flushes = a.heard()[1], b.heard()[1]
    server.each("FLUSHALL")
    await until(lambda: a.heard()[1] > flushes[0] and b.heard()[1] > flushes[1], "FLUSHALL's nil invalidation")
    assert not a.holds(KEY) and not b.holds(KEY)
    assert await a.exact.lookup(KEY) is None
    assert a.copy.live  # a flush message keeps the connection


async def test_an_entry_expiring_in_redis_is_dropped(pair: tuple[Replica, Replica], server: Server) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    # Redis ends the entry's life early (the PEXPIRE is announced too), after which a read keeps a copy for
    # what the entry said its life was: only Redis's announcement of the expiry ends it (an eviction the same)
    await announced(lambda: server.pexpire(KEY, 1000), a)
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
        pair: tuple[Replica, Replica], server: Server) -> None:
    a, b = pair
    await announced(lambda: b.exact.store(KEY, entry("one")), a)
    assert text(await a.exact.lookup(KEY)) == "one"
    assert a.holds(KEY)
    connects = a.heard()[3]
    server.each("CLIENT", "KILL", "TYPE", "pubsub")  # both replicas' tracking connections
    await until(lambda: a.heard()[2] >= 1, "the loss to be noticed")
    assert not a.holds(KEY)  # flushed when it went, so nothing unannounced is ever served
    await b.exact.store(KEY, entry("two"))  # a change no tracking connection may have heard
    assert text(await a.exact.lookup(KEY)) == "two"
    await until(lambda: a.heard()[3] > connects and a.copy.live, "tracking to be re-established")
    assert text(await a.exact.lookup(KEY)) == "two"
    assert text(await a.exact.lookup(KEY)) == "two"
    assert a.holds(KEY)
    assert all(tracker.last_error is not None for tracker in a.trackers)
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


async def test_a_change_of_primaries_flushes_and_tracks_each_afresh(redis_url: str) -> None:
    with RedisServer() as other:
        first = ClusterNode("127.0.0.1", int(redis_url.rsplit(":", 1)[1].split("/")[0]))
        primaries = [first]

        async def now() -> list[ClusterNode]:
            return list(primaries)

        tracking = ClusterTracking(now, prefix=f"{PREFIX}exact:", timeout=1.0, every=0.01)
        copy = TrackedCopy(MemoryBackend(10**6), tracking)
        tracking.start()
        try:
            await until(lambda: copy.live, "the first primary's tracking")
            await promote(copy, b"one")
            assert await copy.get(KEY) == b"one"
            primaries.append(ClusterNode("127.0.0.1", other.port))  # a failover, a node added
            await until(lambda: tracking.topology_changes == 1, "the change to be seen")
            assert KEY not in copy.store._items  # flushed: the key's slot may have moved
            await until(lambda: copy.live, "both primaries' tracking")
            assert sorted(tracking.trackers) == sorted(node.name for node in primaries)
            assert tracking.status()["live"] is True
            await tracking.check()
            with other.client() as client:  # the new primary's changes reach the copy too
                await promote(copy, b"two")
                client.set(KEY, b"three")
            await until(lambda: KEY not in copy.store._items, "the new primary's invalidation")
        finally:
            await tracking.stop()
        assert not copy.live


async def test_a_silent_connection_is_given_up_and_the_copy_flushed() -> None:
    with RedisServer() as server:
        home = RedisHome(parse_redis_url(server.url), timeout=1.0)
        tracker = Tracker(home.tracking_connection, prefix=f"{PREFIX}exact:", timeout=1.0, heartbeat=0.05)
        copy = TrackedCopy(MemoryBackend(10**6), tracker)
        tracker.start()
        try:
            await until(lambda: copy.live, "tracking")
            await promote(copy, b"one")
            server.signal(signal.SIGSTOP)  # hung: the connection stays open, nothing is answered
            try:
                await until(lambda: not copy.live, "the silence to be noticed")
                assert KEY not in copy.store._items
                assert tracker.last_error is not None and "PING" in tracker.last_error
            finally:
                server.signal(signal.SIGCONT)
            await until(lambda: copy.live, "tracking again")
        finally:
            await tracker.stop()
            await home.aclose()
