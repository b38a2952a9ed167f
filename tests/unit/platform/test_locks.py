"""Leases, in the process and on a real Redis: one holder, renew and release by the holder's token only,
expiry by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from proxy.platform.locks import Locks, MemoryLocks, RedisLocks, lock_name
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_name_shares_the_hash_tag_of_what_it_guards() -> None:
    assert lock_name("cg:", "flight", "abc") == "cg:lock:flight:{abc}"


async def test_memory_leases() -> None:
    clock = Clock()
    locks = MemoryLocks(clock=clock)
    lease = await locks.acquire("l", 1.0)
    assert lease is not None and await locks.acquire("l", 1.0) is None
    assert await locks.renew(lease, 2.0)
    clock.now = 2.5
    assert not await locks.renew(lease, 1.0)  # expired: no longer the holder
    other = await locks.acquire("l", 1.0)
    assert other is not None and not await locks.release(lease) and await locks.release(other)


@pytest.fixture
async def redis_locks(redis_url: str) -> AsyncIterator[Locks]:
    home = RedisHome(parse_redis_url(redis_url), timeout=2.0)
    yield RedisLocks(home)
    await home.aclose()


async def test_redis_leases(redis_locks: Locks) -> None:
    lease = await redis_locks.acquire("t:lock:x:{d}", 0.3)
    assert lease is not None and await redis_locks.acquire("t:lock:x:{d}", 0.3) is None
    assert await redis_locks.renew(lease, 0.3)
    await asyncio.sleep(0.4)
    assert not await redis_locks.renew(lease, 0.3)  # expired by itself
    taken = await redis_locks.acquire("t:lock:x:{d}", 5)
    assert taken is not None
    assert not await redis_locks.release(lease)  # a former holder never frees someone else's
    assert await redis_locks.release(taken)
    assert await redis_locks.acquire("t:lock:x:{d}", 5) is not None
