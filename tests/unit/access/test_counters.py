"""One behaviour suite for every rate counter (in-process, and Redis: a real server and a real cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proxy.access.ratelimit import Counter, MemoryCounter, RedisCounter
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from tests.support.redis_homes import KINDS, home_for


@pytest.fixture(params=["memory", *KINDS])
async def counter(request: pytest.FixtureRequest) -> AsyncIterator[Counter]:
    if request.param == "memory":
        yield MemoryCounter()
        return
    home = home_for(request.param, request)
    yield RedisCounter(home)
    await home.aclose()


async def test_counts_per_key(counter: Counter) -> None:
    assert [await counter.incr("cg:ratelimit:a:7", 61) for _ in range(3)] == [1, 2, 3]
    assert await counter.incr("cg:ratelimit:b:7", 61) == 1
    assert await counter.incr("cg:ratelimit:a:7", 61) == 4


async def test_a_new_window_starts_from_one(counter: Counter) -> None:
    await counter.incr("cg:ratelimit:a:7", 61)
    assert await counter.incr("cg:ratelimit:a:8", 61) == 1


async def test_redis_counters_expire_with_their_window(redis_url: str) -> None:
    import redis

    home = RedisHome(parse_redis_url(redis_url), timeout=5.0)
    try:
        await RedisCounter(home).incr("cg:ratelimit:a:9", 61)
    finally:
        await home.aclose()
    with redis.Redis.from_url(redis_url) as client:
        assert 0 < client.ttl("cg:ratelimit:a:9") <= 61
