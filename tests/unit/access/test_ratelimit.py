"""proxy.access.ratelimit: the fixed one-minute window, its headers, and failing open."""

from __future__ import annotations

from typing import Any

from proxy.access.ratelimit import MemoryCounter, RateLimiter, RedisCounter
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


def test_identity_is_the_hashed_key_else_the_hashed_address() -> None:
    def scope(headers: list[tuple[bytes, bytes]], client: str = "10.0.0.1") -> dict[str, Any]:
        return {"headers": headers, "client": (client, 1234)}

    with_key = RateLimiter.identity(scope([(b"authorization", b"Bearer sk-alice")]))
    assert "sk-alice" not in with_key
    assert with_key == RateLimiter.identity(scope([(b"authorization", b"Bearer sk-alice")], client="10.0.0.2"))
    assert with_key != RateLimiter.identity(scope([(b"authorization", b"Bearer sk-bob")]))
    assert RateLimiter.identity(scope([])) == RateLimiter.identity(scope([]))
    assert RateLimiter.identity(scope([])) != RateLimiter.identity(scope([], client="10.0.0.2"))
