"""Keeping popular entries fresh: refresh-ahead (``CACHE_REFRESH_AHEAD``) and ``stale-while-revalidate``.

The chat pipeline hands every exact hit to :meth:`Refresher.consider`, which never delays the answer: the
client is answered from the cache at once, and a refresh (the same request asked upstream again with
``no-cache``, stored as a miss would be) is started in the background when

- **refresh-ahead** is on, the entry was hit at least ``CACHE_REFRESH_MIN_HITS`` times since it was stored,
  and less than ``CACHE_REFRESH_AHEAD_FRACTION`` of its TTL is left; or
- the entry is **stale** and was served because the request allowed it (``Cache-Control:
  stale-while-revalidate=N``: expired at most N seconds ago, within the time entries are kept past their
  TTL, ``CACHE_KEEP_EXPIRED``);

and only for a request whose answer would be stored again: not bypassed, not ``no-store``, and at or below
the creative temperature (or with a ``seed``).

Two bounds keep it from spending more than the operator allows: one refresh at a time per key (a
:class:`Lease`: :class:`LocalLease` in one process; :class:`SharedLease` across replicas that share Redis, a
short lease named after the entry's hash tag, so it lives on the entry's node), and at most
``CACHE_REFRESH_MAX_PER_MINUTE`` refreshes started in any 60 seconds by each process. What happened is counted
(:attr:`Refresher.counts`: started, refreshed, failed, capped, busy; ``cachegate_cache_refreshes_total``).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.cache.entry import CachedResponse
from proxy.core.request import ChatRequest
from proxy.errors import BackendError
from proxy.platform import locks

logger = logging.getLogger("cachegate.refresh")

#: Entries whose hits are remembered at most (past it, the oldest is forgotten: it just refreshes later).
MAX_TRACKED = 100_000
OUTCOMES = ("started", "refreshed", "failed", "capped", "busy")


class Lease(Protocol):
    """Who may refresh a key now. ``acquire`` answers at once (never waits for the holder)."""

    async def acquire(self, key: str) -> bool: ...

    async def release(self, key: str) -> None: ...


class LocalLease:
    """One refresh per key in this process."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    async def acquire(self, key: str) -> bool:
        if key in self.held:
            return False
        self.held.add(key)
        return True

    async def release(self, key: str) -> None:
        self.held.discard(key)


class SharedLease:
    """One refresh per key across the replicas that share ``locks`` (Redis): ``SET NX PX`` on
    ``<prefix>lock:refresh:{<digest>}`` for ``ttl`` seconds (longer than a refresh may take, so a replica that
    dies while refreshing frees the key by itself). When Redis does not answer, this replica goes ahead alone:
    the in-process bound still holds, and a refresh is only ever a wasted upstream call, never a wrong answer."""

    def __init__(self, shared: locks.Locks, *, prefix: str, ttl: float) -> None:
        self._locks = shared
        self._prefix = prefix
        self._ttl = ttl
        self._held: dict[str, locks.Lease | None] = {}  # key → its lease (None: taken alone, Redis failing)

    async def acquire(self, key: str) -> bool:
        if key in self._held:
            return False
        name = locks.lock_name(self._prefix, "refresh", key.rpartition("{")[2].rstrip("}"))
        try:
            lease = await self._locks.acquire(name, self._ttl)
        except BackendError as exc:
            logger.info("refresh lease for %s not taken (%s): refreshing alone", key, exc)
            self._held[key] = None
            return True
        if lease is None:
            return False  # another replica refreshes it
        self._held[key] = lease
        return True

    async def release(self, key: str) -> None:
        lease = self._held.pop(key, None)
        if lease is not None:
            try:
                await self._locks.release(lease)
            except BackendError as exc:  # it expires by itself
                logger.info("refresh lease for %s not released (%s)", key, exc)


@dataclass(frozen=True)
class RefreshPolicy:
    ahead: bool = False
    min_hits: int = 3
    fraction: float = 0.1
    max_per_minute: int = 60
    creative_temperature: float = 0.7


def storable(request: ChatRequest, creative_temperature: float) -> bool:
    """Would a fresh answer to ``request`` be stored again (so refreshing it is worth an upstream call)?"""
    directives = request.directives
    if directives.bypass or not directives.write:
        return False
    temperature = request.body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool) \
            and temperature > creative_temperature:
        return "seed" in request.body
    return True


class Refresher:
    def __init__(self, policy: RefreshPolicy, *, spawn: Callable[[Coroutine[Any, Any, Any]], Any],
                 lease: Lease | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.spawn = spawn
        self.lease: Lease = lease or LocalLease()
        self._clock = clock
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._hits: dict[str, tuple[float, int]] = {}  # key → (stored_at of the entry, hits on it)
        self._pending: set[str] = set()
        self._started: collections.deque[float] = collections.deque()

    def watches(self, stale: bool) -> bool:
        """Whether a hit (``stale`` or not) can start a refresh at all: without refresh-ahead only a stale one
        can, so a fresh hit need not be counted (nor its refresh be prepared)."""
        return stale or self.policy.ahead

    def consider(self, request: ChatRequest, entry: CachedResponse, *, stale: bool, now: float,
                 refresh: Callable[[], Awaitable[None]]) -> bool:
        """Count a hit on ``entry``; start ``refresh`` in the background if it is due. Never waits."""
        hits = self._count(request.key, entry.stored_at)
        policy = self.policy
        if stale:
            due = True
        elif policy.ahead and hits >= policy.min_hits:
            due = entry.stored_at + entry.ttl - now < policy.fraction * entry.ttl
        else:
            due = False
        if not due or not storable(request, policy.creative_temperature):
            return False
        return self.start(request.key, refresh)

    def _count(self, key: str, stored_at: float) -> int:
        seen = self._hits.get(key)
        hits = seen[1] + 1 if seen is not None and seen[0] == stored_at else 1
        if seen is None and len(self._hits) >= MAX_TRACKED:
            del self._hits[next(iter(self._hits))]
        self._hits[key] = (stored_at, hits)
        return hits

    def start(self, key: str, refresh: Callable[[], Awaitable[None]]) -> bool:
        if key in self._pending:
            self.counts["busy"] += 1
            return False
        now = self._clock()
        started = self._started
        while started and now - started[0] >= 60.0:
            started.popleft()
        if len(started) >= self.policy.max_per_minute:
            self.counts["capped"] += 1
            return False
        started.append(now)
        self._pending.add(key)
        self.counts["started"] += 1
        self.spawn(self._run(key, refresh))
        return True

    async def _run(self, key: str, refresh: Callable[[], Awaitable[None]]) -> None:
        try:
            if not await self.lease.acquire(key):
                self.counts["busy"] += 1
                return
            try:
                await refresh()
                self.counts["refreshed"] += 1
                self._hits.pop(key, None)
            except Exception as exc:  # a refresh never fails a request: the entry stays as it was
                self.counts["failed"] += 1
                logger.info("refreshing %s failed: %r", key, exc)
            finally:
                await self.lease.release(key)
        finally:
            self._pending.discard(key)
