"""The feedback map's stores: in the process (bounded, expiring) and in Redis (shared, expiring)."""

from __future__ import annotations

import asyncio

from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from proxy.semantic.feedback import FeedbackStore, MemoryFeedbackStore, RedisFeedbackStore, Served

SERVED = Served(point_id="p1", scope="s", asked_hash="a", stored_hash="b")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_expires_and_keeps_the_last_hits() -> None:
    clock = Clock()
    store = MemoryFeedbackStore(memory=2, clock=clock)
    await store.put("r1", SERVED, 10)
    await store.put("r2", SERVED, 10)
    await store.put("r3", SERVED, 10)
    assert await store.get("r1") is None and await store.get("r3") == SERVED  # the oldest went first
    clock.now = 11
    assert await store.get("r3") is None


async def check_shared(store: FeedbackStore, other: FeedbackStore) -> None:
    await store.put("req-1", SERVED, 0.3)
    await store.put("req-2", SERVED, 60)
    assert await other.get("req-1") == SERVED  # another replica's store sees it
    await other.delete("req-2")
    assert await store.get("req-2") is None
    await asyncio.sleep(0.4)
    assert await other.get("req-1") is None  # expired by itself
    await store.put("req-3", SERVED, 60)
    await other.clear()
    assert await store.get("req-3") is None


async def test_redis_store_is_shared_and_expires(redis_url: str) -> None:
    homes = [RedisHome(parse_redis_url(redis_url), timeout=2.0) for _ in range(2)]
    try:
        await check_shared(*(RedisFeedbackStore(home, prefix="t:") for home in homes))
    finally:
        for home in homes:
            await home.aclose()
