"""Leases: short locks that expire by themselves, for work one replica should do for all (the probe's leader,
and later the single flight across replicas).

``acquire(name, ttl)`` returns a :class:`Lease` (or ``None`` when someone else holds it), ``renew`` extends a
lease its holder still holds, ``release`` gives it up (``fail`` gives it up saying the work failed, which
:meth:`Locks.state` shows for a moment); the last two act only when the token still matches,
so a holder whose lease expired and was taken never renews or frees someone else's. On Redis a lease is
``SET name token NX PX ttl`` and two one-key scripts, so in a cluster each call goes to one slot; name a
lease after what it guards with the same hash tag (``lock_name(prefix, "flight", digest)``) and it lives on
the same node as the entry. Redis failures raise :class:`~proxy.errors.BackendError`: a caller that cannot
get a lease decides itself what failing open means (go ahead alone; never an error because of the lock).
Without Redis, :class:`MemoryLocks` gives the same semantics within the process.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.platform.redis import RedisHome
from proxy.platform.redis_lane import LuaScript

_RENEW = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
""")
_RELEASE = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")
#: Give the lease up as failed: the key says so for a moment, so those waiting stop waiting at once.
_FAIL = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], 'failed', 'PX', ARGV[2]) end
return 0
""")
FAILED = "failed"


@dataclass(frozen=True)
class Lease:
    name: str
    token: str


def lock_name(prefix: str, kind: str, tag: str) -> str:
    """``<prefix>lock:<kind>:{<tag>}``: the hash tag puts the lease beside the keys of the same tag."""
    return f"{prefix}lock:{kind}:{{{tag}}}"


class Locks(Protocol):
    async def acquire(self, name: str, ttl: float) -> Lease | None: ...

    async def renew(self, lease: Lease, ttl: float) -> bool: ...

    async def release(self, lease: Lease) -> bool: ...

    async def fail(self, lease: Lease, ttl: float) -> bool:
        """Give the lease up saying the work failed: for ``ttl`` seconds :meth:`state` is ``failed`` and the
        name cannot be taken, so those waiting on it go ahead on their own instead of one after another."""
        ...

    async def state(self, name: str) -> str | None:
        """``held``, ``failed`` (see :meth:`fail`) or ``None`` (free)."""
        ...


class RedisLocks:
    """Leases in Redis, each command on the home's lane (:meth:`RedisHome.command`): the flight lease is on
    every miss's path."""

    def __init__(self, home: RedisHome) -> None:
        self._home = home

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        token = secrets.token_hex(16)
        taken = await self._home.command("SET", name, token, "NX", "PX", _ms(ttl), key=name)
        return Lease(name, token) if taken else None

    async def renew(self, lease: Lease, ttl: float) -> bool:
        return bool(await self._home.run_script(_RENEW, [lease.name], [lease.token, _ms(ttl)]))

    async def release(self, lease: Lease) -> bool:
        return bool(await self._home.run_script(_RELEASE, [lease.name], [lease.token]))

    async def fail(self, lease: Lease, ttl: float) -> bool:
        return bool(await self._home.run_script(_FAIL, [lease.name], [lease.token, _ms(ttl)]))

    async def state(self, name: str) -> str | None:
        value = await self._home.command("GET", name, key=name)
        if value is None:
            return None
        return FAILED if (value.decode() if isinstance(value, bytes) else value) == FAILED else "held"


class MemoryLocks:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}

    def _holder(self, name: str) -> str | None:
        held = self._held.get(name)
        if held is None or held[1] <= self._clock():
            self._held.pop(name, None)
            return None
        return held[0]

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        if self._holder(name) is not None:
            return None
        lease = Lease(name, secrets.token_hex(16))
        self._held[name] = (lease.token, self._clock() + ttl)
        return lease

    async def renew(self, lease: Lease, ttl: float) -> bool:
        if self._holder(lease.name) != lease.token:
            return False
        self._held[lease.name] = (lease.token, self._clock() + ttl)
        return True

    async def release(self, lease: Lease) -> bool:
        if self._holder(lease.name) != lease.token:
            return False
        del self._held[lease.name]
        return True

    async def fail(self, lease: Lease, ttl: float) -> bool:
        if self._holder(lease.name) != lease.token:
            return False
        self._held[lease.name] = (FAILED, self._clock() + ttl)
        return True

    async def state(self, name: str) -> str | None:
        holder = self._holder(name)
        return None if holder is None else (FAILED if holder == FAILED else "held")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
