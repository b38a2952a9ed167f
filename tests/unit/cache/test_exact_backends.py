"""One behaviour suite for every exact-tier backend: the in-process store, the disk level (real SQLite in a
temporary directory) and Redis (a real server, a real cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.cache.disk import DiskBackend
from proxy.cache.memory import MemoryBackend
from proxy.cache.redis_backend import RedisBackend
from proxy.contracts import ExactBackend
from proxy.errors import BackendError
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from tests.support.redis_homes import KINDS, home_for


@pytest.fixture(params=["memory", "disk", *KINDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ExactBackend]:
    if request.param in ("memory", "disk"):
        backend: ExactBackend = MemoryBackend(10**6) if request.param == "memory" else \
            DiskBackend(tmp_path / "exact.sqlite3", 10**6)
        yield backend
        await backend.aclose()
        return
    home = home_for(request.param, request)
    yield RedisBackend(home)
    await home.aclose()


async def keys(store: ExactBackend, pattern: str) -> set[str]:
    return {key async for key in store.scan(pattern)}


async def test_implements_the_contract(store: ExactBackend) -> None:
    assert isinstance(store, ExactBackend)
    assert store.remote is (store.name == "redis")


async def test_get_set_overwrite_delete(store: ExactBackend) -> None:
    assert await store.get("cg:exact:a") is None
    assert await store.set("cg:exact:a", b"one", 60) is True  # kept
    assert await store.get("cg:exact:a") == b"one"
    await store.set("cg:exact:a", b"two", 60)
    assert await store.get("cg:exact:a") == b"two"
    await store.set("cg:exact:b", b"\x00binary\xff", 60)
    assert await store.get("cg:exact:b") == b"\x00binary\xff"
    assert await store.delete(["cg:exact:a", "cg:exact:missing"]) == 1
    assert await store.delete([]) == 0
    assert await store.get("cg:exact:a") is None


async def test_concurrent_reads_each_get_their_own_value(store: ExactBackend) -> None:
    for i in range(20):
        await store.set(f"cg:exact:{i}", str(i).encode(), 60)
    values = await asyncio.gather(*(store.get(f"cg:exact:{i % 25}") for i in range(50)))
    assert values == [str(i % 25).encode() if i % 25 < 20 else None for i in range(50)]


async def test_scan_matches_globs_under_the_prefix(store: ExactBackend) -> None:
    for key in ("cg:exact:o1:ns:m1:d1", "cg:exact:o1:ns:m2:d2", "cg:exact:o2:-:m1:d3", "other:exact:o1:ns:m1:d4"):
        await store.set(key, b"v", 60)
    assert await keys(store, "cg:exact:*") == {"cg:exact:o1:ns:m1:d1", "cg:exact:o1:ns:m2:d2", "cg:exact:o2:-:m1:d3"}
    assert await keys(store, "cg:exact:*:ns:*") == {"cg:exact:o1:ns:m1:d1", "cg:exact:o1:ns:m2:d2"}
    assert await keys(store, "cg:exact:*:*:m1:*") == {"cg:exact:o1:ns:m1:d1", "cg:exact:o2:-:m1:d3"}


async def test_an_entry_expires_with_its_ttl(store: ExactBackend) -> None:
    await store.set("cg:exact:short", b"v", 1)
    await store.set("cg:exact:long", b"v", 60)
    for _ in range(40):  # Redis expires on its own clock; wait for it, without a fixed sleep
        if await store.get("cg:exact:short") is None:
            break
        await asyncio.sleep(0.1)
    assert await store.get("cg:exact:short") is None
    assert await keys(store, "cg:exact:*") == {"cg:exact:long"}


async def test_ping_and_usage(store: ExactBackend) -> None:
    await store.ping()
    await store.set("cg:exact:u", b"x" * 100, 60)
    entries, size = await store.usage()
    assert entries >= 1 and size >= 100
    report = await store.report()
    assert report.bytes is not None and report.bytes >= 100
    if not store.remote:  # a server's entries are counted by the exact tier, over its own prefix
        assert report.entries == 1 and report.bound == 10**6


async def test_touch_and_maintain_keep_entries(store: ExactBackend) -> None:
    await store.set("cg:exact:t", b"v", 60)
    await store.touch({"cg:exact:t": 3, "cg:exact:missing": 1})
    await store.maintain()
    assert await store.get("cg:exact:t") == b"v"
    assert store.stats.evictions == {"size": store.stats.evictions["size"], "expiry": store.stats.evictions["expiry"]}


async def test_a_value_larger_than_the_bound_is_not_kept(store: ExactBackend) -> None:
    if store.remote:
        pytest.skip("a server's bound is its own (maxmemory)")
    await store.set("cg:exact:big", b"small", 60)
    assert await store.set("cg:exact:big", b"x" * (10**6 + 1), 60) is False  # the exact tier counts no set
    assert await store.get("cg:exact:big") is None


async def test_a_redis_that_is_not_there_is_a_backend_error() -> None:
    home = RedisHome(parse_redis_url("redis://127.0.0.1:1"), timeout=0.5)
    store = RedisBackend(home)
    try:
        for call in (store.get("k"), store.set("k", b"v", 1), store.delete(["k"]), store.ping(), store.usage()):
            with pytest.raises(BackendError):
                await call
        with pytest.raises(BackendError):
            await keys(store, "*")
    finally:
        await home.aclose()
