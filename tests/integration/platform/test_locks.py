"""Leases on a real Redis, as the probe's leader uses them: one holder, renewals only by it, expiry,
take-over, safe release."""

from __future__ import annotations

import asyncio

import pytest

from proxy.errors import BackendError
from proxy.platform.locks import RedisLocks
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from tests.support.servers import RedisServer


def test_one_holder_renewed_released_and_taken_over(redis_url: str, redis_server: RedisServer) -> None:
    async def go() -> None:
        home = RedisHome(parse_redis_url(redis_url), timeout=1.0)
        locks = RedisLocks(home)
        try:
            a = await locks.acquire("t:lock", 30)
            assert a is not None
            assert await locks.acquire("t:lock", 30) is None  # b cannot take a's lease
            with redis_server.client() as client:
                assert client.get("t:lock") == a.token.encode()
                client.pexpire("t:lock", 1000)
                assert await locks.renew(a, 30) is True
                assert 29_000 < client.pttl("t:lock") <= 30_000  # renewed to a whole period
            assert await locks.release(a) is True
            b = await locks.acquire("t:lock", 30)
            assert b is not None and b.token != a.token
            assert await locks.renew(a, 30) is False and await locks.release(a) is False  # a cannot touch b's
        finally:
            await home.aclose()

    asyncio.run(go())


def test_an_expired_lease_is_free_and_its_old_holder_cannot_renew_it(redis_url: str,
                                                                     redis_server: RedisServer) -> None:
    async def go() -> None:
        home = RedisHome(parse_redis_url(redis_url), timeout=1.0)
        locks = RedisLocks(home)
        try:
            a = await locks.acquire("t:lock", 30)
            assert a is not None
            with redis_server.client() as client:
                assert 0 < client.pttl("t:lock") <= 30_000  # a holder that dies leaves at most one period
                client.delete("t:lock")  # what the expiry does once a stops renewing
            b = await locks.acquire("t:lock", 30)
            assert b is not None
            assert await locks.renew(a, 30) is False and await locks.release(a) is False  # b's lease is safe
            with redis_server.client() as client:
                assert client.get("t:lock") == b.token.encode()
        finally:
            await home.aclose()

    asyncio.run(go())


def test_redis_down_is_a_backend_error() -> None:
    async def go() -> None:
        home = RedisHome(parse_redis_url("redis://127.0.0.1:1/0"), timeout=0.5)
        try:
            with pytest.raises(BackendError):
                await RedisLocks(home).acquire("t:lock", 5)
        finally:
            await home.aclose()

    asyncio.run(go())
