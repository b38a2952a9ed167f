"""The exact tier's local copy of Redis: entries read from Redis, kept in-process while Redis says they hold.

With Redis the exact tier is ``(TrackedCopy, RedisBackend)``: :class:`~proxy.cache.exact.ExactCache` reads
the copy first and promotes a Redis hit into it, for what is left of the entry's life. The copy is kept
correct by Redis's own invalidation messages (:mod:`proxy.platform.tracking`): a key changed, expired or was
evicted on the server → its copy goes; a flush, or the tracking connection lost → everything goes. Storage
is the bytes-bounded LRU of :mod:`proxy.cache.memory` (``REDIS_CLIENT_CACHE_BYTES``).

It is never wrong (beyond an invalidation's delivery delay) because of three rules:

- **Only while tracked.** While any tracking connection it depends on is not established the copy holds
  nothing, answers every read with a miss and stores nothing (a change made meanwhile would be unheard).
- **Only what was fetched after a mark.** A local miss *marks* the key for the task that missed (the one
  that will read Redis and promote, in the same call: ``ExactCache._find``). An invalidation of the key, or
  a flush, voids its marks before the promotion arrives: a value read from Redis before a change whose
  announcement came in the meantime is then not kept. The mark is the task's own, so another request's
  later miss cannot vouch for an older read.
- **A write without a mark is not kept.** ``ExactCache.store`` writes every level; here that drops the old
  copy and keeps nothing (the Redis write that follows invalidates us anyway).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence

from proxy.cache.memory import MemoryBackend
from proxy.cache.stats import LevelReport
from proxy.platform.tracking import Tracking

NAME = "redis-local"
#: Keys with marks outstanding, at most (past it the oldest key's marks go: a promotion is lost, never wrong).
MAX_MARKED = 10_000
#: Tasks marked for one key, at most (a hot key missing everywhere gathers marks until it is written).
MAX_MARKS_PER_KEY = 64


class TrackedCopy:
    """An :class:`~proxy.contracts.ExactBackend` in front of Redis, fed by the Redis home's tracking."""

    name = NAME
    remote = False

    def __init__(self, store: MemoryBackend, tracking: Tracking) -> None:
        self.store = store
        self.tracking = tracking
        self.stats = store.stats
        self._marks: dict[str, weakref.WeakSet[asyncio.Task[object]]] = {}
        self.voided = 0  # fetches whose mark an invalidation or a flush voided (their promotion is not kept)
        self.invalidated = 0  # local copies dropped by an invalidation
        tracking.attach(self)

    @property
    def live(self) -> bool:
        return self.tracking.live

    # -- the sink: what the trackers tell -------------------------------------------------------------------

    def invalidate(self, keys: Sequence[str]) -> None:
        for key in keys:
            marks = self._marks.pop(key, None)
            if marks:
                self.voided += len(marks)
            if self.store.forget(key):
                self.invalidated += 1

    def flush(self) -> None:
        self.voided += sum(len(marks) for marks in self._marks.values())
        self._marks.clear()
        self.store.clear()

    # -- the level ------------------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        if not self.live:
            return None
        value = await self.store.get(key)
        if value is None:
            self._mark(key)
        return value

    def peek(self, key: str) -> bytes | None:
        """The copy held, if any; a local miss marks nothing here: the lookup that follows it marks (and reads
        Redis) in its own task."""
        return self.store.peek(key) if self.live else None

    def _mark(self, key: str) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        marks = self._marks.get(key)
        if marks is None:
            if len(self._marks) >= MAX_MARKED:
                del self._marks[next(iter(self._marks))]
            marks = self._marks[key] = weakref.WeakSet()
        if len(marks) < MAX_MARKS_PER_KEY:
            marks.add(task)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        """Keep ``value`` only as the promotion of a fetch this task marked, with the mark still valid; whether
        it was kept (a write is not: the exact tier counts the promotions kept as this level's sets)."""
        marks = self._marks.get(key)
        task = asyncio.current_task()
        if marks is None or task is None or task not in marks or not self.live:
            self.store.forget(key)  # a write: the copy held is older than what is being written
            return False
        marks.discard(task)
        if not marks:
            del self._marks[key]
        return await self.store.set(key, value, ttl_seconds)

    async def delete(self, keys: Sequence[str]) -> int:
        for key in keys:
            self._marks.pop(key, None)
        return await self.store.delete(keys)

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        async for key in self.store.scan(pattern):
            yield key

    async def ping(self) -> None:
        return None

    async def usage(self) -> tuple[int, int]:
        return await self.store.usage()

    async def report(self) -> LevelReport:
        report = await self.store.report()
        report.extra["tracking"] = "live" if self.live else "down"
        report.extra["invalidated"] = self.invalidated
        report.extra["voided"] = self.voided
        return report

    async def touch(self, hits: Mapping[str, int]) -> None:
        return None  # the first level: its own reads keep its LRU order

    async def maintain(self) -> None:
        self.store.sweep()

    async def aclose(self) -> None:
        self.flush()
