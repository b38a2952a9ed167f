"""proxy.access.ratelimit: the fixed one-minute window, its headers, and failing open."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.access.ratelimit import MemoryCounter, RateLimiter, RedisCounter, address_bucket
from proxy.contracts import NullObserver
from proxy.platform.failopen import FailOpen
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_n_allowed_then_refused_until_the_next_window() -> None:
    clock = Clock(6000.0 + 15)  # 15 s into a window
    limiter = RateLimiter(3, MemoryCounter(), prefix="cg:", clock=clock)
    decisions = [await limiter.hit("alice") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert {d.reset for d in decisions} == {45}
    assert decisions[0].headers() == [("x-ratelimit-limit", "3"), ("x-ratelimit-remaining", "2"),
                                      ("x-ratelimit-reset", "45")]
    assert (await limiter.hit("bob")).allowed  # budgets are per caller
    clock.now = 6060.0
    fresh = await limiter.hit("alice")
    assert fresh.allowed and fresh.remaining == 2 and fresh.reset == 60


async def test_memory_counter_forgets_old_windows() -> None:
    counter = MemoryCounter()
    await counter.incr("cg:ratelimit:a:1", 61)
    await counter.incr("cg:ratelimit:b:1", 61)
    await counter.incr("cg:ratelimit:a:2", 61)
    assert counter._counts == {"cg:ratelimit:a:2": 1}


async def test_a_failing_store_lets_requests_through_and_is_reported() -> None:
    failopen = FailOpen(NullObserver())
    home = RedisHome(parse_redis_url("redis://127.0.0.1:1"), timeout=0.5)  # nothing listens there: connection refused
    limiter = RateLimiter(1, RedisCounter(home), prefix="cg:", failopen=failopen)
    try:
        assert all([(await limiter.hit("alice")).allowed for _ in range(3)])
    finally:
        await home.aclose()
    assert failopen.components["redis"].failures == 3
    assert "Connect" in (failopen.components["redis"].last_error or "")


def test_identity_is_the_verified_key_else_the_address() -> None:
    def scope(client: str = "10.0.0.1") -> dict[str, Any]:
        return {"headers": [(b"authorization", b"Bearer sk-alice")], "client": (client, 1234)}

    verified = "a1" * 32  # the hash of a key on CLIENT_API_KEYS
    with_key = RateLimiter.identity(scope(), verified)
    assert verified not in with_key and len(with_key) == 24
    assert with_key == RateLimiter.identity(scope("10.0.0.2"), verified)  # a verified key is one budget anywhere
    assert with_key != RateLimiter.identity(scope(), "b2" * 32)
    # a key that was not verified is the client's choice, so it is not a budget: the address is
    assert RateLimiter.identity(scope()) == RateLimiter.identity({"headers": [], "client": ("10.0.0.1", 9)})
    assert RateLimiter.identity(scope()) != RateLimiter.identity(scope("10.0.0.2"))


@pytest.mark.parametrize(("host", "bucket"), [
    ("10.0.0.1", "10.0.0.1"), ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ("::ffff:10.0.0.1", "10.0.0.1"), ("fe80::1%eth0", "fe80::/64"), (None, "unknown"), ("/tmp/socket", "/tmp/socket"),
])
def test_an_ipv6_host_is_one_budget_per_64(host: str | None, bucket: str) -> None:
    assert address_bucket(host) == bucket


async def test_memory_counters_are_bounded_new_callers_share_an_overflow_budget() -> None:
    counter = MemoryCounter(max_entries=2)
    assert [await counter.incr(f"cg:ratelimit:{who}:7", 61) for who in ("a", "b", "c", "d", "a")] == [1, 1, 1, 2, 2]
    assert counter._counts == {"cg:ratelimit:a:7": 2, "cg:ratelimit:b:7": 1, "overflow:7": 2}
    assert await counter.incr("cg:ratelimit:c:8", 61) == 1  # a new window starts empty
