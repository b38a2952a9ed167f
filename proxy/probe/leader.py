"""Which replica runs the probe's scheduler: exactly one.

- :class:`SoloLeader`: without Redis there is one process, and it leads.
- :class:`LockLeader`: with Redis the leader is the holder of one lease (:mod:`proxy.platform.locks`,
  expiry ``PROBE_LOCK_SECONDS``), which it renews on every tick of the scheduler (several per lock period).
  A leader that dies stops renewing; the key expires and the next replica to tick takes it: within one lock
  period. A replica that cannot reach Redis does not lead (two leaders would probe, and
  spend, twice). ``POST /probe/api/run`` on a follower leaves a request (a second key) that the leader
  takes on its next tick.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from proxy.errors import BackendError
from proxy.platform.locks import Lease, Locks
from proxy.platform.redis import RedisHome
from proxy.probe.clock import Clock

logger = logging.getLogger("cachegate.probe")
RUN_REQUEST_SECONDS = 600  # a run request nobody takes (no leader) is forgotten after this long


class Leadership(Protocol):
    leader: bool

    async def hold(self) -> bool:
        """Keep (or take) the lead; ``True`` while this replica leads."""
        ...

    async def release(self) -> None: ...

    async def request_run(self) -> bool:
        """Ask the leader for a cycle now; ``False`` when the request cannot be left."""
        ...

    async def take_run_request(self) -> bool:
        """Whether a run was requested since the last call (the leader asks)."""
        ...

    def describe(self) -> dict[str, Any]: ...


class SoloLeader:
    """One process, no Redis: it always leads."""

    def __init__(self, clock: Clock, replica: str) -> None:
        self.clock = clock
        self.replica = replica
        self.leader = False
        self.since: float | None = None

    async def hold(self) -> bool:
        if not self.leader:
            self.leader, self.since = True, self.clock.wall()
        return True

    async def release(self) -> None:
        self.leader = False

    async def request_run(self) -> bool:
        return False

    async def take_run_request(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {"mode": "single process (no REDIS_URL)", "replica": self.replica, "leader": self.leader,
                "leader_since": self.since}


class LockLeader:
    def __init__(self, redis: RedisHome, locks: Locks, *, key: str, replica: str, lock_seconds: float,
                 clock: Clock) -> None:
        self.redis = redis
        self.locks = locks
        self.key = key
        self.lease: Lease | None = None
        self.run_key = key + ":run"
        self.replica = replica
        self.lock_seconds = lock_seconds
        self.clock = clock
        self.leader = False
        self.since: float | None = None
        self.error: str | None = None
        self.checked_at: float | None = None  # when this replica last tried to hold the lock

    async def hold(self) -> bool:
        self.checked_at = self.clock.wall()
        try:
            held = await self._hold()
            self.error = None
        except BackendError as exc:
            held = False
            if self.error is None:
                logger.warning("probe scheduler: Redis unavailable, not leading: %s", exc.message)
            self.error = exc.message
        if held and not self.leader:
            logger.info("probe scheduler: replica %s leads", self.replica)
            self.since = self.clock.wall()
        elif self.leader and not held:
            logger.warning("probe scheduler: replica %s lost the lead", self.replica)
            self.since = None
        self.leader = held
        return held

    async def _hold(self) -> bool:
        """Renew the lease when held, else try to take it."""
        if self.lease is not None and await self.locks.renew(self.lease, self.lock_seconds):
            return True
        self.lease = await self.locks.acquire(self.key, self.lock_seconds)
        return self.lease is not None

    async def release(self) -> None:
        if self.leader:
            self.leader = False
            lease, self.lease = self.lease, None
            try:
                if lease is not None:
                    await self.locks.release(lease)
            except BackendError as exc:
                logger.warning("probe scheduler: could not release the lock: %s", exc.message)

    async def request_run(self) -> bool:
        try:
            await self.redis.call(lambda client: client.set(self.run_key, self.replica, px=RUN_REQUEST_SECONDS * 1000))
        except BackendError:
            return False
        return True

    async def take_run_request(self) -> bool:
        try:
            return bool(await self.redis.call(lambda client: client.getdel(self.run_key)))
        except BackendError:
            return False

    def describe(self) -> dict[str, Any]:
        return {"mode": "redis lock", "replica": self.replica, "leader": self.leader, "leader_since": self.since,
                "lock_key": self.key, "lock_seconds": self.lock_seconds, "checked_at": self.checked_at,
                "error": self.error}
