"""proxy.cache.memory: the in-process LRU store, driven by a fake clock."""

from __future__ import annotations

import pytest

from proxy.cache.memory import ENTRY_OVERHEAD, MemoryBackend
from proxy.contracts import ExactBackend


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def backend(clock: FakeClock, max_bytes: int = 2000) -> MemoryBackend:
    return MemoryBackend(max_bytes, clock=clock)


V100 = b"v" * 100  # with a 2-character key: 2 + 100 + 400 = 502 bytes


async def keys_of(store: MemoryBackend, pattern: str = "*") -> list[str]:
    return [key async for key in store.scan(pattern)]


def test_overhead_constant() -> None:
    # what CPython spends per entry beyond the key's and value's bytes, measured by bench/memory_bench.py
    # (about 360 B: str and bytes headers, the tuple, the expiry float, the ordered dict's slots)
    assert ENTRY_OVERHEAD == 400


def test_implements_the_contract(clock: FakeClock) -> None:
    store = backend(clock)
    assert isinstance(store, ExactBackend)
    assert store.name == "memory"


async def test_get_missing_is_none(clock: FakeClock) -> None:
    assert await backend(clock).get("nope") is None


async def test_set_then_get(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"hello", 10)
    assert await store.get("a") == b"hello"
    assert await store.usage() == (1, 1 + 5 + 400)


async def test_overwrite_replaces_value_and_bytes(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"x" * 10, 10)
    await store.set("a", b"y" * 20, 10)
    assert await store.get("a") == b"y" * 20
    assert await store.usage() == (1, 1 + 20 + 400)


async def test_ttl_expiry_exactly_at_the_boundary(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"value", 10)  # expires at 110.0
    clock.now = 109.999
    assert await store.get("a") == b"value"
    clock.now = 110.0
    assert await store.get("a") is None
    assert await store.usage() == (0, 0)
    clock.now = 100.0  # the entry is gone, not just hidden
    assert await store.get("a") is None


async def test_zero_ttl_is_expired_at_once(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"value", 0)
    assert await store.get("a") is None


async def test_overwrite_resets_expiry(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"old", 10)
    clock.now = 105.0
    await store.set("a", b"new", 10)  # expires at 115.0
    clock.now = 112.0
    assert await store.get("a") == b"new"
    clock.now = 115.0
    assert await store.get("a") is None


async def test_lru_eviction_by_bytes(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=2000)
    for key in ("k1", "k2", "k3"):
        await store.set(key, V100, 60)
    assert await store.usage() == (3, 1506)
    await store.set("k4", V100, 60)
    assert await keys_of(store) == ["k2", "k3", "k4"]
    assert await store.usage() == (3, 1506)
    assert await store.get("k1") is None


async def test_exactly_at_budget_keeps_everything(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=1506)
    for key in ("k1", "k2", "k3"):
        await store.set(key, V100, 60)
    assert await keys_of(store) == ["k1", "k2", "k3"]
    assert await store.usage() == (3, 1506)


async def test_get_refreshes_recency(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=2000)
    for key in ("k1", "k2", "k3"):
        await store.set(key, V100, 60)
    assert await store.get("k1") == V100
    await store.set("k4", V100, 60)
    assert await keys_of(store) == ["k3", "k1", "k4"]
    assert await store.get("k2") is None


async def test_overwrite_refreshes_recency(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=2000)
    for key in ("k1", "k2", "k3"):
        await store.set(key, V100, 60)
    await store.set("k1", V100, 60)
    await store.set("k4", V100, 60)
    assert sorted(await keys_of(store)) == ["k1", "k3", "k4"]


async def test_big_value_evicts_as_many_as_needed(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=2000)
    for key in ("k1", "k2", "k3"):
        await store.set(key, V100, 60)
    await store.set("k4", b"b" * 598, 60)  # cost 1000: 1506 + 1000 - 502 - 502 = 1502
    assert await keys_of(store) == ["k3", "k4"]
    assert await store.usage() == (2, 1502)


async def test_value_filling_the_whole_store_is_kept(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=2000)
    await store.set("k1", V100, 60)
    await store.set("k", b"x" * 1599, 60)  # cost exactly 2000
    assert await keys_of(store) == ["k"]
    assert await store.usage() == (1, 2000)


async def test_oversized_value_not_stored_and_evicts_nothing(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=2000)
    await store.set("k1", V100, 60)
    await store.set("k", b"x" * 1600, 60)  # cost 2001
    assert await store.get("k") is None
    assert await keys_of(store) == ["k1"]
    assert await store.usage() == (1, 502)


async def test_delete_counts_removed_keys(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"1", 60)
    await store.set("b", b"22", 60)
    await store.set("c", b"333", 60)
    assert await store.delete(["a", "b", "missing", "a"]) == 2
    assert await store.get("a") is None
    assert await store.get("b") is None
    assert await store.get("c") == b"333"
    assert await store.usage() == (1, 1 + 3 + 400)
    assert await store.delete([]) == 0


async def test_scan_glob_patterns(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=100_000)
    keys = ["cg:exact:o1:ns1:m1:d1", "cg:exact:o1:ns2:m1:d2", "cg:exact:o2:ns1:m2:d3", "cg:other:x", "other:exact:a"]
    for key in keys:
        await store.set(key, b"v", 60)
    assert await keys_of(store, "*") == keys
    assert await keys_of(store, "cg:exact:*") == keys[:3]
    assert await keys_of(store, "cg:exact:*:ns1:*:*") == ["cg:exact:o1:ns1:m1:d1", "cg:exact:o2:ns1:m2:d3"]
    assert await keys_of(store, "cg:exact:*:*:m1:*") == ["cg:exact:o1:ns1:m1:d1", "cg:exact:o1:ns2:m1:d2"]
    assert await keys_of(store, "cg:exact:o?:ns2:*") == ["cg:exact:o1:ns2:m1:d2"]
    assert await keys_of(store, "cg:other:x") == ["cg:other:x"]
    assert await keys_of(store, "cg:other") == []
    assert await keys_of(store, "CG:*") == []


async def test_scan_skips_expired(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("short", b"v", 5)  # expires at 105
    await store.set("long", b"v", 50)  # expires at 150
    assert await keys_of(store) == ["short", "long"]
    clock.now = 104.9
    assert await keys_of(store) == ["short", "long"]
    clock.now = 105.0
    assert await keys_of(store) == ["long"]
    clock.now = 150.0
    assert await keys_of(store) == []


async def test_scan_survives_deletion_while_iterating(clock: FakeClock) -> None:
    store = backend(clock)
    for key in ("a", "b", "c"):
        await store.set(key, b"v", 60)
    seen = []
    async for key in store.scan("*"):
        seen.append(key)
        await store.delete([key])
    assert seen == ["a", "b", "c"]
    assert await store.usage() == (0, 0)


async def test_usage_counts_key_value_and_overhead(clock: FakeClock) -> None:
    store = backend(clock, max_bytes=10_000)
    assert await store.usage() == (0, 0)
    await store.set("key", b"0123456789", 60)
    await store.set("other-key", b"", 60)
    assert await store.usage() == (2, (3 + 10 + 400) + (9 + 0 + 400))


async def test_aclose_empties_the_store(clock: FakeClock) -> None:
    store = backend(clock)
    await store.set("a", b"v", 60)
    await store.aclose()
    assert await store.usage() == (0, 0)
    assert await store.get("a") is None


async def test_ping(clock: FakeClock) -> None:
    assert await backend(clock).ping() is None
