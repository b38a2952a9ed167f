"""The Redis lock against a real Redis: one holder, renewals only by it, expiry, take-over, safe release."""

from __future__ import annotations

import asyncio

import pytest

from proxy.errors import BackendError
from proxy.platform.locks import RedisLock
from proxy.platform.redis import RedisHome
from tests.support.servers import RedisServer


def test_one_holder_renewed_released_and_taken_over(redis_url: str, redis_server: RedisServer) -> None:
    async def go() -> None:
        home = RedisHome(redis_url, timeout=1.0)
        a = RedisLock(home, "t:lock", owner="a", ttl=30)
        b = RedisLock(home, "t:lock", owner="b", ttl=30)
        try:
            assert await a.acquire() is True
            assert await b.acquire() is False and await b.hold() is False
            assert await b.renew() is False and await b.release() is False  # b cannot touch a's lock
            assert await a.holder() == "a"
            with redis_server.client() as client:
                client.pexpire("t:lock", 1000)
                assert await a.renew() is True
                assert 29_000 < client.pttl("t:lock") <= 30_000  # renewed to a whole period
            assert await a.release() is True
            assert await a.holder() is None
            assert await b.hold() is True and await b.holder() == "b"
        finally:
            await home.aclose()

    asyncio.run(go())


def test_an_expired_lock_is_free_and_its_old_holder_cannot_renew_it(redis_url: str,
                                                                    redis_server: RedisServer) -> None:
    async def go() -> None:
        home = RedisHome(redis_url, timeout=1.0)
        a = RedisLock(home, "t:lock", owner="a", ttl=30)
        b = RedisLock(home, "t:lock", owner="b", ttl=30)
        try:
            assert await a.acquire()
            with redis_server.client() as client:
                assert 0 < client.pttl("t:lock") <= 30_000  # a holder that dies leaves at most one period
                client.delete("t:lock")  # what the expiry does once a stops renewing
            assert await b.acquire() is True
            assert await a.renew() is False and await a.release() is False  # b's lock is safe from a
            assert await b.holder() == "b"
        finally:
            await home.aclose()

    asyncio.run(go())


def test_redis_down_is_a_backend_error() -> None:
    async def go() -> None:
        home = RedisHome("redis://127.0.0.1:1/0", timeout=0.5)
        try:
            with pytest.raises(BackendError):
                await RedisLock(home, "t:lock", owner="a", ttl=5).hold()
        finally:
            await home.aclose()

    asyncio.run(go())
