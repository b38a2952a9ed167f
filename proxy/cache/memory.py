"""In-process exact store: LRU bounded by bytes, with per-key expiry. The embedded default's first level.

It counts its own evictions (:class:`~proxy.cache.stats.LevelStats`): ``size`` when the LRU drops an entry
to stay within the bound, ``expiry`` when an entry is found (or swept) past its life.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from proxy.cache.stats import LevelReport, LevelStats

# What CPython spends per entry beyond the key's and value's own bytes (the str and bytes object headers,
# the (value, expiry) tuple, the expiry float, the ordered dict's slots, and what evictions leave in the
# allocator), counted against the budget so that many small entries cannot exceed it. Measured by
# bench/memory_bench.py at about 360 B whatever the value size (it was counted as 200 B, and 100k small
# entries took 1.4-1.5x CACHE_MAX_BYTES); with 400 B the store's growth is 0.91-0.98x the bound.
ENTRY_OVERHEAD = 400


class MemoryBackend:
    name = "memory"
    remote = False

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self.stats = LevelStats()

    def _cost(self, key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self._bytes -= self._cost(key, value)

    def forget(self, key: str) -> bool:
        """Drop ``key`` if held, at once (no await: an invalidation is applied before anything else runs)."""
        if key not in self._items:
            return False
        self._drop(key)
        return True

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    async def get(self, key: str) -> bytes | None:
        return self.peek(key)

    def peek(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires_at = item
        if self._clock() >= expires_at:
            self._drop(key)
            self.stats.evicted("expiry")
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        cost = self._cost(key, value)
        if key in self._items:
            self._drop(key)
        if cost > self.max_bytes:
            return False  # larger than the whole store: caching it would evict everything else
        self._items[key] = (value, self._clock() + ttl_seconds)
        self._bytes += cost
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))
            self.stats.evicted("size")
        return True

    async def delete(self, keys: Sequence[str]) -> int:
        removed = 0
        for key in keys:
            if key in self._items:
                self._drop(key)
                removed += 1
        return removed

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        match = re.compile(fnmatch.translate(pattern)).match
        now = self._clock()
        for key, (_, expires_at) in list(self._items.items()):
            if expires_at > now and match(key):
                yield key

    async def ping(self) -> None:
        return None

    async def usage(self) -> tuple[int, int]:
        return len(self._items), self._bytes

    async def report(self) -> LevelReport:
        return LevelReport(entries=len(self._items), bytes=self._bytes, bound=self.max_bytes)

    async def touch(self, hits: Mapping[str, int]) -> None:
        return None  # the first level: its own reads keep its LRU order

    async def maintain(self) -> None:
        self.sweep()

    def sweep(self) -> int:
        """Drop every entry past its life (a periodic job: entries nobody asks for again still go)."""
        now = self._clock()
        expired = [key for key, (_, expires_at) in self._items.items() if expires_at <= now]
        for key in expired:
            self._drop(key)
        self.stats.evicted("expiry", len(expired))
        return len(expired)

    async def aclose(self) -> None:
        self.clear()
