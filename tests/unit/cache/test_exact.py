"""The exact tier over two levels (memory in front of a real SQLite disk level): promotion, expiry, what each
level counts, clears and deletes that reach both levels, and a level that fails."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.cache.disk import DiskBackend
from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.contracts import ExactBackend, NullObserver
from proxy.core.canonical import Tenant, exact_key
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen

PREFIX = "cg:"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def entry(text: str, *, stored_at: float, ttl: int = 60, model: str = "m") -> CachedResponse:
    completion = {"id": "c1", "object": "chat.completion", "model": model,
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    return CachedResponse.from_completion(completion, model=model, stored_at=stored_at, ttl=ttl)


def key(name: str, model: str = "m", namespace: str = "") -> str:
    return exact_key(PREFIX, Tenant("owner", namespace), model, name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tier(tmp_path: Path, clock: Clock) -> AsyncIterator[ExactCache]:
    levels = [MemoryBackend(10**6, clock=clock), DiskBackend(tmp_path / "exact.sqlite3", 10**7, clock=clock)]
    cache = ExactCache(levels, prefix=PREFIX, observer=NullObserver(), failopen=FailOpen(NullObserver()),
                       clock=clock)
    yield cache
    await cache.stop()


async def test_a_write_reaches_both_levels_and_a_memory_miss_is_promoted(tier: ExactCache, clock: Clock) -> None:
    memory, disk = tier.levels
    assert tier.component == "memory+disk"
    await tier.store(key("a"), entry("hello", stored_at=clock.now))
    assert await memory.get(key("a")) is not None and await disk.get(key("a")) is not None
    await memory.delete([key("a")])  # as after a restart: memory cold, the disk has it
    found = await tier.lookup(key("a"))
    assert found is not None and found.completion["choices"][0]["message"]["content"] == "hello"
    assert await memory.get(key("a")) is not None  # promoted
    assert (memory.stats.misses, disk.stats.hits) == (1, 1)
    assert await tier.lookup(key("a")) is not None
    assert memory.stats.hits == 1 and disk.stats.hits == 1  # the second read never reached the disk


async def test_promotion_keeps_the_rest_of_the_entry_life(tier: ExactCache, clock: Clock) -> None:
    memory, _ = tier.levels
    await tier.store(key("a"), entry("hello", stored_at=clock.now, ttl=60))
    await memory.delete([key("a")])
    clock.now += 50
    assert await tier.lookup(key("a")) is not None
    clock.now += 11  # past the TTL: memory forgot it on its own, the disk's row has expired too
    assert await memory.get(key("a")) is None
    assert await tier.lookup(key("a")) is None


async def test_an_expired_entry_is_an_expired_read_and_a_miss(tmp_path: Path, clock: Clock) -> None:
    levels = [MemoryBackend(10**6, clock=clock), DiskBackend(tmp_path / "exact.sqlite3", 10**7, clock=clock)]
    tier = ExactCache(levels, prefix=PREFIX, observer=NullObserver(), failopen=FailOpen(NullObserver()),
                      keep_expired=300, clock=clock)
    await tier.store(key("a"), entry("old", stored_at=clock.now, ttl=60))
    clock.now += 100
    assert await tier.lookup(key("a")) is None
    assert levels[0].stats.expired_reads == 1
    stale, is_stale = await tier.lookup_stale(key("a"), max_stale=300)
    assert stale is not None and is_stale
    assert await tier.lookup_stale(key("a"), max_stale=30) == (None, False)
    await tier.stop()


async def test_counts_sets_deletes_and_compression(tier: ExactCache, clock: Clock) -> None:
    memory, disk = tier.levels
    big = entry("word " * 2000, stored_at=clock.now)
    await tier.store(key("big"), big)
    await tier.store(key("small"), entry("hi", stored_at=clock.now))
    assert (memory.stats.sets, disk.stats.sets) == (2, 2)
    ratio = memory.stats.compression_ratio
    assert ratio is not None and ratio > 5
    assert await tier.delete([key("big"), key("gone")]) == 1
    assert (memory.stats.deletes, disk.stats.deletes) == (1, 1)
    levels = {level.name: level.snapshot() for level in await tier.level_reports()}
    assert levels["memory"]["entries"] == 1 and levels["disk"]["entries"] == 1
    assert levels["disk"]["bound"] == 10**7 and levels["disk"]["policy"] == "lru"
    assert levels["memory"]["sets"] == 2 and levels["memory"]["deletes"] == 1


async def test_a_set_is_an_entry_a_level_kept_by_a_write_or_a_promotion(tmp_path: Path, clock: Clock) -> None:
    memory, disk = MemoryBackend(2_000, clock=clock), DiskBackend(tmp_path / "exact.sqlite3", 10**7, clock=clock)
    levels: list[ExactBackend] = [memory, disk]
    tier = ExactCache(levels, prefix=PREFIX, observer=NullObserver(), failopen=FailOpen(NullObserver()),
                      clock=clock)
    await tier.store(key("a"), entry("hello", stored_at=clock.now))
    await memory.delete([key("a")])
    assert await tier.lookup(key("a")) is not None  # promoted from the disk: kept by the memory a second time
    assert (memory.stats.sets, disk.stats.sets) == (2, 1)
    noise = random.Random(7).randbytes(4_000).hex()  # does not compress below the memory level's bound
    await tier.store(key("big"), entry(noise, stored_at=clock.now))
    assert await memory.get(key("big")) is None
    assert (memory.stats.sets, disk.stats.sets) == (2, 2)
    await tier.stop()


async def test_clear_reaches_both_levels_by_model_pattern_and_age(tier: ExactCache, clock: Clock) -> None:
    memory, disk = tier.levels
    await tier.store(key("a", model="m1"), entry("a", stored_at=clock.now - 500, model="m1"))
    await tier.store(key("b", model="m1"), entry("b", stored_at=clock.now, model="m1"))
    await tier.store(key("c", model="m2"), entry("c", stored_at=clock.now, model="m2"))
    await memory.delete([key("c", model="m2")])  # only the disk has c
    assert await tier.clear(older_than=100) == 1
    assert await tier.lookup(key("a", model="m1")) is None
    assert await tier.clear(pattern=key("*", model="m2")) == 1
    assert await disk.get(key("c", model="m2")) is None
    assert await tier.clear(model="m1") == 1
    assert await memory.usage() == (0, 0) and (await disk.usage())[0] == 0
    with pytest.raises(ValueError):
        await tier.clear(pattern="other:*")


async def test_memory_hits_reach_the_disk_order_in_one_batch(tier: ExactCache, clock: Clock) -> None:
    _, disk = tier.levels
    await tier.store(key("a"), entry("a", stored_at=clock.now))
    for _ in range(3):
        assert await tier.lookup(key("a")) is not None
    await tier.flush_touches()
    hits = await disk.database.run(lambda conn: conn.execute("SELECT hits FROM entries").fetchone()[0])  # type: ignore[attr-defined]
    assert hits == 3


async def test_a_failing_disk_level_fails_open(tmp_path: Path, clock: Clock) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the directory should be")
    levels = [MemoryBackend(10**6, clock=clock), DiskBackend(blocked / "exact.sqlite3", 10**7, clock=clock)]
    failopen = FailOpen(NullObserver())
    tier = ExactCache(levels, prefix=PREFIX, observer=NullObserver(), failopen=failopen, clock=clock)
    assert await tier.store(key("a"), entry("a", stored_at=clock.now)) is False  # memory has it, the disk not
    assert await tier.lookup(key("a")) is not None
    await levels[0].delete([key("a")])
    assert await tier.lookup(key("a")) is None
    assert failopen.components["disk"].failures >= 2
    reports = {level.name: level.report for level in await tier.level_reports()}
    assert reports["disk"].entries is None and "unavailable" in (reports["disk"].note or "")
    await tier.store(key("b"), entry("b", stored_at=clock.now))
    with pytest.raises(BackendError):  # memory forgot it, but a level that may still hold it failed: say so
        await tier.delete([key("b")])
    assert await levels[0].get(key("b")) is None
    await tier.stop()


def cached_entry(text: str) -> CachedResponse:
    completion = {"id": "chatcmpl-1", "created": 5, "object": "chat.completion", "model": "m",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                               "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    return CachedResponse.from_completion(completion, model="m", stored_at=1e12, ttl=60,
                                          usage=completion["usage"], id="chatcmpl-1")


async def test_a_repeated_hit_reuses_the_decoded_entry_until_the_value_changes() -> None:
    cache = ExactCache([MemoryBackend(10**6)], prefix="cg:", observer=NullObserver(),
                       failopen=FailOpen(NullObserver()), clock=lambda: 1e12)
    await cache.store("cg:exact:k", cached_entry("one"))
    first = await cache.lookup("cg:exact:k")
    assert first is not None and await cache.lookup("cg:exact:k") is first
    await cache.store("cg:exact:k", cached_entry("two"))  # a new value: the memo must not answer with the old one
    second = await cache.lookup("cg:exact:k")
    assert second is not None and second is not first
    assert second.completion["choices"][0]["message"]["content"] == "two"
    await cache.delete(["cg:exact:k"])
    assert await cache.lookup("cg:exact:k") is None


async def test_an_entry_gives_its_usage_and_a_fresh_identity_without_parsing_the_body() -> None:
    stored = CachedResponse.decode(cached_entry("hi").encode())
    assert stored.usage == {"prompt_tokens": 2, "completion_tokens": 1} and stored._completion is None
    assert stored.tokens == (2, 1, 0)
    template = stored.identity()
    assert template is not None and stored.identity() is template  # worked out once
    body = template.fill("new", 99)
    assert (template.original, template.original_header) == ("chatcmpl-1", b"chatcmpl-1")
    assert stored._completion is None
    assert body == stored.body.replace(b'"chatcmpl-1"', b'"chatcmpl-new"').replace(b'"created":5', b'"created":99')


async def test_a_peek_answers_only_what_the_memory_holds_and_counts_only_what_it_answers(tier: ExactCache,
                                                                                      clock: Clock) -> None:
    memory, disk = tier.levels
    await tier.store(key("a"), entry("hello", stored_at=clock.now, ttl=60))
    await memory.delete([key("a")])  # on the disk only
    assert tier.peek(key("a")) is None  # the disk is I/O: the lookup's to read
    assert (memory.stats.hits, memory.stats.misses, disk.stats.hits) == (0, 0, 0)
    assert await tier.lookup(key("a")) is not None  # promoted into the memory
    found = tier.peek(key("a"))
    assert found is not None and found.body == (await tier.lookup(key("a"), observe=False)).body  # type: ignore[union-attr]
    assert (memory.stats.hits, memory.stats.misses, disk.stats.hits) == (2, 1, 1)
    assert tier._touched == {key("a"): 2}  # the disk's order hears of the memory's hits, the peek's included
    clock.now += 61  # past its life: the memory drops it (its own eviction), the peek counts no miss
    assert tier.peek(key("a")) is None
    assert (memory.stats.misses, memory.stats.evictions.get("expiry")) == (1, 1)
    assert await tier.lookup(key("a")) is None  # the lookup counts it
    assert memory.stats.misses == 2
    assert tier.peek(key("never stored")) is None
    assert memory.stats.misses == 2


async def test_a_peek_leaves_an_entry_kept_past_its_ttl_to_the_lookup(tmp_path: Path, clock: Clock) -> None:
    tier = ExactCache([MemoryBackend(10**6, clock=clock)], prefix=PREFIX, observer=NullObserver(),
                      failopen=FailOpen(NullObserver()), keep_expired=300, clock=clock)
    await tier.store(key("a"), entry("hello", stored_at=clock.now, ttl=60))
    clock.now += 61  # kept for stale answers, but expired: no hit, and the expired read is the lookup's to count
    assert tier.peek(key("a")) is None
    assert tier.levels[0].stats.expired_reads == 0
    assert await tier.lookup(key("a")) is None
    assert tier.levels[0].stats.expired_reads == 1
