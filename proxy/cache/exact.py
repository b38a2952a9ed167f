"""The exact tier: one wrapper around one or more levels, each an :class:`ExactBackend`.

Serialising (:class:`CachedResponse`), expiry checks, counting and fail-open handling live here once, so the
backends only move bytes and behave the same. The levels are tried in order (the embedded default: the
in-process LRU, then the disk; with Redis: the tracked local copy of Redis, then Redis, see :mod:`proxy.cache.tracked`):

- a read goes down the levels until one has the key; an entry found past its TTL is an *expired read* and
  a miss (lower levels hold the same entry or an older one); an entry a lower level had is *promoted* into
  the levels above it, for the rest of its life;
- a write goes to every level, the first first (it is called off the request path, by the chat exchange);
  a level's *sets* count the entries it kept, written or promoted (the tracked copy keeps no write);
- a delete or a clear reaches every level, so clearing the tier clears both the memory and the disk;
- hits the first level serves are remembered and handed to the levels below in one batch
  (:meth:`flush_touches`, a job), so their LRU/LFU order sees the entries the memory keeps hot.

Entries are kept ``keep_expired`` seconds past their TTL (the backend's own TTL is longer by that much):
the time in which an expired entry can still be served as stale (``stale-while-revalidate``; later
``stale-if-error``). ``lookup`` never serves such an entry; :meth:`lookup_stale` does, when asked.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from proxy.cache.entry import CachedResponse, DecodedEntries, EntryFormatError
from proxy.cache.stats import Level, LevelReport
from proxy.component import Contribution, HealthCheck, Job
from proxy.contracts import ExactBackend, Observer
from proxy.core.canonical import exact_pattern
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen

logger = logging.getLogger("cachegate.exact")

#: How often the hits of the first level are handed to the levels below it.
TOUCH_EVERY = 5.0
#: Most distinct keys remembered between two hand-overs (past it, further hits are not handed on).
MAX_TOUCHES = 100_000
#: How often each level's upkeep runs.
MAINTAIN_EVERY = 30.0
#: A server level's entries are counted by a SCAN over cachegate's own keys; a count is reused for this many
#: times as long as it took (a 10 ms SCAN is redone after a second at the earliest), and at most CENSUS_EVERY.
CENSUS_SPACING = 100.0
CENSUS_EVERY = 60.0


class ExactCache:
    def __init__(self, backend: ExactBackend | Sequence[ExactBackend], *, prefix: str, observer: Observer,
                 failopen: FailOpen, keep_expired: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.levels: tuple[ExactBackend, ...] = (backend,) if not isinstance(backend, Sequence) else tuple(backend)
        if not self.levels:
            raise ValueError("the exact tier needs at least one level")
        self.backend = self.levels[0]
        self.prefix = prefix
        self.keep_expired = keep_expired
        self._observer = observer
        self._failopen = failopen
        self._clock = clock
        self._touched: dict[str, int] = {}
        self._census: dict[str, tuple[float, int]] = {}  # level → (reuse until, entries) for server levels
        self._decoded = DecodedEntries()  # for the first level

    @property
    def component(self) -> str:
        """The tier's backend name: ``memory``, ``memory+disk`` or ``redis``."""
        return "+".join(level.name for level in self.levels)

    # -- reading --------------------------------------------------------------------------------------

    async def lookup(self, key: str, *, observe: bool = True) -> CachedResponse | None:
        """The entry under ``key`` if it has not expired. ``observe``: count it as a lookup of the tier (a
        wait for another replica's answer polls without counting)."""
        return (await self._find(key, observe=observe))[0]

    async def lookup_stale(self, key: str, max_stale: float) -> tuple[CachedResponse | None, bool]:
        """The entry under ``key`` even if it expired at most ``max_stale`` seconds ago; and whether it is stale."""
        return await self._find(key, stale=max_stale)

    async def _find(self, key: str, stale: float = 0.0, observe: bool = True) -> tuple[CachedResponse | None, bool]:
        started = time.perf_counter()
        entry: CachedResponse | None = None
        expired = False
        for depth, level in enumerate(self.levels):
            try:
                raw = await level.get(key)
            except BackendError as exc:
                self._failopen.failed(level.name, exc)
                if depth + 1 < len(self.levels):
                    continue  # a lower level may still have it
                if observe:
                    self._observer.cache_lookup("exact", "error", time.perf_counter() - started)
                return None, False
            self._failopen.succeeded(level.name)
            if raw is None:
                level.stats.misses += 1
                continue
            try:
                found = self._decoded.decode(key, raw) if depth == 0 else CachedResponse.decode(raw)
            except EntryFormatError as exc:
                logger.warning("dropping unreadable entry %s: %s", key, exc)
                level.stats.misses += 1
                await self._delete_quietly([key])
                break
            now = self._clock()
            if found.expired(now):
                level.stats.expired_reads += 1
                if stale and now < found.stored_at + found.ttl + stale:
                    entry, expired = found, True
                break  # a lower level holds this entry or an older one
            level.stats.hits += 1
            entry = found
            if depth == 0 and len(self.levels) > 1:
                self._touch(key)
            elif depth > 0:
                await self._promote(key, raw, found, self.levels[:depth], now)
            break
        if observe:
            outcome = "hit" if entry is not None and not expired else "miss"
            self._observer.cache_lookup("exact", outcome, time.perf_counter() - started)
        return entry, expired

    def peek(self, key: str) -> CachedResponse | None:
        """The entry under ``key`` if the first level holds it in the process and it has not expired: the hit
        :meth:`lookup` would find, found without I/O and counted the same. Anything else is ``None`` and
        counts nothing, since the caller then goes on to :meth:`lookup`, which counts it (a miss, an expired
        read, an unreadable entry dropped). The one thing done here on a ``None`` is the level's own: the
        memory drops an entry past its stored life (counted as an eviction), as the lookup's read would."""
        started = time.perf_counter()
        level = self.levels[0]
        raw = level.peek(key)
        if raw is None:
            return None
        try:
            found = self._decoded.decode(key, raw)
        except EntryFormatError:
            return None
        if found.expired(self._clock()):
            return None
        self._failopen.succeeded(level.name)
        level.stats.hits += 1
        if len(self.levels) > 1:
            self._touch(key)
        self._observer.cache_lookup("exact", "hit", time.perf_counter() - started)
        return found

    def _touch(self, key: str) -> None:
        touched = self._touched
        if key in touched:
            touched[key] += 1
        elif len(touched) < MAX_TOUCHES:
            touched[key] = 1

    async def _promote(self, key: str, raw: bytes, entry: CachedResponse, levels: Sequence[ExactBackend],
                       now: float) -> None:
        """Copy an entry a lower level had into the levels above it, for what is left of its life."""
        remaining = int(entry.stored_at + entry.ttl + self.keep_expired - now)
        if remaining < 1:
            return
        for level in levels:
            try:
                if await level.set(key, raw, remaining):
                    level.stats.stored(len(entry.body), CachedResponse.stored_body_length(raw))
            except BackendError as exc:
                self._failopen.failed(level.name, exc)

    async def flush_touches(self) -> None:
        """Hand the first level's hits to the levels below it (their LRU/LFU order)."""
        touched, self._touched = self._touched, {}
        if not touched:
            return
        for level in self.levels[1:]:
            try:
                await level.touch(touched)
            except BackendError as exc:
                self._failopen.failed(level.name, exc)

    # -- writing --------------------------------------------------------------------------------------

    async def store(self, key: str, entry: CachedResponse) -> bool:
        value = entry.encode()
        stored = True
        for level in self.levels:
            try:
                kept = await level.set(key, value, entry.ttl + self.keep_expired)
            except BackendError as exc:
                self._failopen.failed(level.name, exc)
                stored = False
                continue
            self._failopen.succeeded(level.name)
            if kept:  # the tracked copy of Redis keeps no write; a level keeps nothing larger than itself
                level.stats.stored(len(entry.body), CachedResponse.stored_body_length(value))
        return stored

    async def delete(self, keys: list[str]) -> int:
        """Remove ``keys`` from every level; the count is of the level that held the most of them. If any level
        failed, the error is raised after the others were tried: a level that still holds a deleted entry
        would serve it again once the level above forgets it, so the caller must know."""
        removed = 0
        failure: BackendError | None = None
        for key in keys:
            self._touched.pop(key, None)
        for level in self.levels:
            try:
                count = await level.delete(keys)
            except BackendError as exc:
                self._failopen.failed(level.name, exc)
                failure = exc
                continue
            level.stats.deletes += count
            removed = max(removed, count)
        if failure is not None:
            raise failure
        return removed

    async def _delete_quietly(self, keys: list[str]) -> None:
        with contextlib.suppress(BackendError):
            await self.delete(keys)

    async def clear(self, *, model: str | None = None, namespace: str | None = None,
                    pattern: str | None = None, older_than: float | None = None) -> int:
        """Remove this tier's entries from every level (narrowed by model/namespace, a key ``pattern`` under
        the prefix, or to entries stored more than ``older_than`` seconds ago); only keys under our prefix
        are touched."""
        glob = pattern if pattern is not None else exact_pattern(self.prefix, model=model, namespace=namespace)
        if not glob.startswith(f"{self.prefix}exact:"):
            raise ValueError(f"a pattern must start with {self.prefix}exact:")
        cutoff = None if older_than is None else self._clock() - older_than
        removed = 0
        for level in self.levels:
            batch: list[str] = []
            async for key in level.scan(glob):
                if cutoff is not None and not await self._stored_before(level, key, cutoff):
                    continue
                batch.append(key)
                if len(batch) >= 500:
                    removed += await self.delete(batch)
                    batch = []
            if batch:
                removed += await self.delete(batch)
        return removed

    @staticmethod
    async def _stored_before(level: ExactBackend, key: str, cutoff: float) -> bool:
        raw = await level.get(key)
        if raw is None:
            return False
        try:
            return CachedResponse.decode(raw).stored_at < cutoff
        except EntryFormatError:
            return True  # unreadable: it goes too

    # -- looking --------------------------------------------------------------------------------------

    async def usage(self) -> tuple[int, int]:
        """(entries, bytes) of the tier: the level holding the most (each level below holds what is above)."""
        reports = [level.report for level in await self.level_reports()]
        entries = max((r.entries or 0 for r in reports), default=0)
        size = max((r.bytes or 0 for r in reports), default=0)
        return entries, size

    async def level_reports(self) -> list[Level]:
        """Each level's gauges and counters (a level that cannot answer shows ``None`` gauges)."""
        out = []
        for level in self.levels:
            try:
                report = await level.report()
                if report.entries is None and level.remote:
                    report.entries = await self._count(level)
            except BackendError as exc:
                report = LevelReport(entries=None, bytes=None, bound=None, note=f"unavailable: {exc.message}")
            out.append(Level(level.name, report, level.stats))
        return out

    async def _count(self, level: ExactBackend) -> int:
        """Entries of ours on a server level: a SCAN of our prefix, repeated no sooner than it is worth."""
        started = time.monotonic()
        known = self._census.get(level.name)
        if known is not None and started < known[0]:
            return known[1]
        count = 0
        async for _ in level.scan(exact_pattern(self.prefix)):
            count += 1
        took = time.monotonic() - started
        self._census[level.name] = (started + min(CENSUS_EVERY, took * CENSUS_SPACING), count)
        return count

    def snapshot_levels(self, levels: list[Level]) -> dict[str, Any]:
        return {level.name: level.snapshot() for level in levels}

    # -- the component: a server level is checked through its home (the Redis home): only local ones here

    def contribution(self) -> Contribution:
        jobs = [Job("exact-upkeep", MAINTAIN_EVERY, self.maintain)]
        if len(self.levels) > 1:
            jobs.append(Job("exact-touches", TOUCH_EVERY, self.flush_touches))
        local = [level for level in self.levels if not level.remote]
        if not local:
            return Contribution(jobs=jobs)
        return Contribution(checks=[HealthCheck("exact_cache", embedded="+".join(level.name for level in local))],
                            jobs=jobs)

    async def maintain(self) -> None:
        """Each level's upkeep (expired entries swept, totals recounted); one level's failure skips only it."""
        for level in self.levels:
            try:
                await level.maintain()
            except BackendError as exc:
                self._failopen.failed(level.name, exc)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.flush_touches()
        for level in self.levels:
            try:
                await level.aclose()
            except Exception:
                logger.exception("closing the %s level failed", level.name)

