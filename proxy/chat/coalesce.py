"""Identical misses share one upstream call: in this process, and across replicas that share Redis.

:meth:`Coalescer.join` decides, for a request that missed every tier, who asks the upstream:

- In this process the first request of a key leads (:class:`~proxy.cache.singleflight.SingleFlight`); a
  plain follower waits for its answer, at most ``CACHE_LOCK_TIMEOUT``; a stream never waits (its first byte
  would wait for the whole answer) and asks the upstream itself.
- Across replicas the local leader also takes a lease beside the entry (``<prefix>lock:flight:{digest}``,
  the entry's hash tag), renewed while it works. A leader on another replica makes a plain request poll the
  exact tier with jittered backoff (nginx ``proxy_cache_lock``): the entry, once written, answers it; a lease
  that lapsed without an entry is taken over (one waiter leads); a leader that failed, or an answer that
  may not be stored, marks the lease ``failed`` so that every waiter asks the upstream at once, on its own.
  A wait that reaches the timeout, or a Redis that cannot be asked, also ends in asking the upstream:
  never an error because of the lock.

What it counts, as lookups of tier ``flight`` (``cachegate_cache_lookups_total{tier="flight",outcome}``):
``local`` and ``remote`` (answered by another request's call), ``stored`` (a request about to lead found the
entry another call had written since its own lookup), ``timeout``, ``failed`` (the leader said so).

Before a request leads it looks at the exact tier once more, *after* it holds the key (the local flight,
then the lease): a leader writes the entry before it lets the key go, so an entry written since this
request's first lookup (which the semantic tier's embedding can make long ago under load) is seen here,
and the upstream is not asked twice for an answer that is already stored. Only when the caller says the
first lookup may be old (``recheck``: the pipeline does after the semantic tier, whose embedding takes
milliseconds): straight after the lookup, a leader storing and letting go in between is rare, and would
cost one more upstream call, never a wrong answer, while the look costs every miss a read (a Redis round
trip, or the disk level). A waiter that takes a lease
over does the same: the leader may have stored and let go between the waiter's last poll and its look
at the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.singleflight import Flight, SingleFlight
from proxy.contracts import Observer
from proxy.core.request import ChatRequest
from proxy.errors import BackendError
from proxy.platform.locks import FAILED, Lease, Locks, lock_name

#: Seconds a leader's lease lives without renewal (a leader that dies frees the key this fast).
LEASE = 10.0
#: What a failed or unstorable answer leaves in the lease, for the waiters to see.
FAILED_FOR = 5.0
FIRST_POLL, LAST_POLL = 0.02, 0.5

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


class Claim:
    """This request leads: it asks the upstream for everyone waiting on the key, here and elsewhere."""

    def __init__(self, flight: Flight[CachedResponse] | None, *, lease: Lease | None = None,
                 locks: Locks | None = None, spawn: Spawn | None = None) -> None:
        self.flight = flight
        self.lease = lease
        self.locks = locks
        self.spawn = spawn
        self._renewing = (spawn(self._renew()) if lease is not None and locks is not None and spawn is not None
                          else None)

    def resolve(self, entry: CachedResponse) -> None:
        """The answer, for the followers in this process (the key stays theirs until :meth:`release`)."""
        if self.flight is not None:
            self.flight.resolve(entry)

    def release(self, *, stored: bool) -> None:
        """Done: the entry is written (``stored``), or nothing will be (followers go ahead on their own)."""
        if self.flight is not None:
            self.flight.release()
        if self._renewing is not None:
            self._renewing.cancel()
        lease, self.lease = self.lease, None
        if lease is not None and self.locks is not None and self.spawn is not None:
            self.spawn(self._give_up(self.locks, lease, stored))

    async def _renew(self) -> None:
        while self.lease is not None and self.locks is not None:
            await asyncio.sleep(LEASE / 3)
            with contextlib.suppress(BackendError):
                if self.lease is not None and not await self.locks.renew(self.lease, LEASE):
                    return  # lost (it lapsed and was taken): nothing more to renew

    @staticmethod
    async def _give_up(locks: Locks, lease: Lease, stored: bool) -> None:
        with contextlib.suppress(BackendError):  # the lease lapses by itself if Redis does not answer
            await (locks.release(lease) if stored else locks.fail(lease, FAILED_FOR))


class Coalescer:
    def __init__(self, flights: SingleFlight[CachedResponse], *, exact: ExactCache, observer: Observer,
                 spawn: Spawn, wait: float, prefix: str, locks: Locks | None = None) -> None:
        self.flights = flights
        self.exact = exact
        self.observer = observer
        self.spawn = spawn
        self.wait = wait
        self.prefix = prefix
        self.locks = locks  # None: nothing is shared with other replicas

    async def join(self, request: ChatRequest, *, recheck: bool = True) -> CachedResponse | Claim | None:
        """Another call's answer; or a :class:`Claim` to ask the upstream for all; or ``None``: ask it alone.
        ``recheck``: the request's exact lookup may be old, so a leader looks once more before it leads."""
        flight = self.flights.join(request.key)
        if not flight.leader:
            if request.stream:
                return None
            started = time.perf_counter()
            try:
                shared = await asyncio.wait_for(flight.wait(), self.wait)  # shielded: the leader goes on
            except TimeoutError:
                shared = None
                self.observer.cache_lookup("flight", "timeout", time.perf_counter() - started)
            if shared is not None:
                self.observer.cache_lookup("flight", "local", time.perf_counter() - started)
            return shared
        if self.locks is None:
            return await self._unless_stored(request, Claim(flight)) if recheck else Claim(flight)
        name = lock_name(self.prefix, "flight", request.key.rpartition("{")[2].rstrip("}"))
        try:
            lease = await self.locks.acquire(name, LEASE)
        except BackendError:
            return Claim(flight)  # Redis cannot say who leads: lead here (fail open)
        if lease is not None or request.stream:
            claim = Claim(flight, lease=lease, locks=self.locks, spawn=self.spawn)
            return await self._unless_stored(request, claim) if recheck else claim
        return await self._wait_for_another_replica(request, flight, name)

    async def _unless_stored(self, request: ChatRequest, claim: Claim) -> CachedResponse | Claim:
        """The entry, if another call stored it since this request looked (the key is given back); else ``claim``."""
        started = time.perf_counter()
        try:
            entry = await self.exact.lookup(request.key, observe=False)
        except BaseException:  # cancelled while holding the key: give it back, or the lease is renewed forever
            claim.release(stored=False)
            raise
        if entry is None:
            return claim
        self.observer.cache_lookup("flight", "stored", time.perf_counter() - started)
        claim.resolve(entry)  # this process's followers, if any joined meanwhile
        claim.release(stored=True)
        return entry

    async def _wait_for_another_replica(self, request: ChatRequest, flight: Flight[CachedResponse],
                                        name: str) -> CachedResponse | Claim:
        assert self.locks is not None
        started = time.perf_counter()
        deadline, delay = started + self.wait, FIRST_POLL
        outcome = "timeout"
        try:
            while time.perf_counter() < deadline:
                await asyncio.sleep(min(delay * random.uniform(0.5, 1.5), max(0.0, deadline - time.perf_counter())))
                delay = min(delay * 2, LAST_POLL)
                entry = await self.exact.lookup(request.key, observe=False)
                if entry is not None:
                    self.observer.cache_lookup("flight", "remote", time.perf_counter() - started)
                    flight.resolve(entry)  # this process's followers get it too
                    flight.release()
                    return entry
                state = await self.locks.state(name)
                if state == FAILED:
                    outcome = "failed"
                    break
                if state is None and (lease := await self.locks.acquire(name, LEASE)) is not None:
                    # its leader went away, or it stored and let go since the look above: look once more
                    return await self._unless_stored(request, Claim(flight, lease=lease, locks=self.locks,
                                                                    spawn=self.spawn))
        except BackendError:
            outcome = "error"
        self.observer.cache_lookup("flight", outcome, time.perf_counter() - started)
        return Claim(flight)
