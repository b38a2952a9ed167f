"""A lock with an expiry on Redis: one holder at a time, renewed while it lives, free once it stops renewing.

One key per lock, so it works on a single Redis and on a Redis Cluster alike (every command and script
touches only that key). Taking it is ``SET key owner NX PX ttl``; renewing and releasing are Lua scripts that
first compare the value with the owner, so a holder whose lock expired and was taken by another can
neither extend nor delete the new holder's lock. A holder that dies stops renewing and the key expires
after at most ``ttl`` seconds: that is how long a take-over can take.

Every call goes through :meth:`RedisHome.call`, so it is bounded by ``REDIS_TIMEOUT`` and any failure is a
:class:`~proxy.errors.BackendError`; callers decide what "Redis is down" means for them.
"""

from __future__ import annotations

from typing import Any

from proxy.platform.redis import RedisHome

#: Extend the lock if we still own it; 1 when extended, 0 when it is someone else's (or gone).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""

#: Delete the lock if we still own it; 1 when deleted.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLock:
    """The lock ``key`` held as ``owner`` (a value unique to this holder) for ``ttl`` seconds at a time."""

    def __init__(self, home: RedisHome, key: str, *, owner: str, ttl: float) -> None:
        self.home = home
        self.key = key
        self.owner = owner
        self.ttl_ms = max(1, int(ttl * 1000))
        self._renew: Any = None
        self._release: Any = None

    async def acquire(self) -> bool:
        """Take the lock if it is free; ``True`` when this owner holds it now."""
        taken = await self.home.call(lambda client: client.set(self.key, self.owner, nx=True, px=self.ttl_ms))
        return bool(taken)

    async def renew(self) -> bool:
        """Extend the lock by ``ttl``; ``False`` when this owner no longer holds it."""
        if self._renew is None:
            self._renew = self.home.script(RENEW)
        script = self._renew
        done = await self.home.call(lambda client: script(keys=[self.key], args=[self.owner, self.ttl_ms],
                                                          client=client))
        return bool(done)

    async def hold(self) -> bool:
        """Renew the lock when held, else try to take it: call this more often than ``ttl``."""
        return await self.renew() or await self.acquire()

    async def release(self) -> bool:
        """Give the lock up (only if this owner holds it), so another can take it at once."""
        if self._release is None:
            self._release = self.home.script(RELEASE)
        script = self._release
        done = await self.home.call(lambda client: script(keys=[self.key], args=[self.owner], client=client))
        return bool(done)

    async def holder(self) -> str | None:
        """Who holds the lock now (``None``: nobody)."""
        value = await self.home.call(lambda client: client.get(self.key))
        return value.decode() if isinstance(value, bytes) else value
