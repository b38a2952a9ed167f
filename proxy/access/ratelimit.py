"""Rate limiting of the proxied API (``/v1/*``): a fixed one-minute window per verified client key, else per
client address.

Whose budget a request spends: its key only once the key is verified (on ``CLIENT_API_KEYS``); otherwise the
client's address (an IPv6 address by its /64, which one host is usually given whole). A key the client
merely chose cannot be a budget: a fresh random token would get a fresh budget, and one counter entry.
The in-process counters are bounded too (:data:`MAX_ENTRIES`): past the bound, new callers share one
``overflow`` budget until the window ends.

With ``REDIS_URL`` the counters live in Redis under the key prefix (one ``INCR`` + ``EXPIRE`` in a Lua
script: atomic, one round trip), so every replica shares one budget; otherwise they live in the process.
If Redis fails the request is let through (fail open) and the failure is reported like any cache
dependency's. Callers are told where they stand with ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until the window ends); the one over budget gets a 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Scope

from proxy.access.auth import client_host
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen
from proxy.platform.redis import RedisHome
from proxy.platform.redis_lane import LuaScript

WINDOW = 60
MAX_ENTRIES = 100_000  # in-process counters kept per window; about 10 MB at most
OVERFLOW = "overflow"

_INCR = LuaScript("""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
""")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> list[tuple[str, str]]:
        return [("x-ratelimit-limit", str(self.limit)), ("x-ratelimit-remaining", str(self.remaining)),
                ("x-ratelimit-reset", str(self.reset))]


class Counter(Protocol):
    async def incr(self, key: str, ttl: int) -> int: ...

    async def aclose(self) -> None: ...


class MemoryCounter:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._counts: dict[str, int] = {}
        self._window: int | None = None
        self._max_entries = max_entries

    async def incr(self, key: str, ttl: int) -> int:
        window = int(key.rsplit(":", 1)[-1])
        if window != self._window:  # keys of earlier windows are never read again
            self._counts = {k: v for k, v in self._counts.items() if k.endswith(f":{window}")}
            self._window = window
        if key not in self._counts and len(self._counts) >= self._max_entries:
            key = f"{OVERFLOW}:{window}"  # full: every new caller of this window shares one budget
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    async def aclose(self) -> None:
        self._counts.clear()


class RedisCounter:
    """Counters shared by every replica, through the process's one Redis home."""

    def __init__(self, home: RedisHome) -> None:
        self._home = home

    async def incr(self, key: str, ttl: int) -> int:
        # one key: in a cluster the script runs on the key's node
        return int(await self._home.run_script(_INCR, [key], [ttl]))

    async def aclose(self) -> None:
        return None  # the home is closed by the composition root


class RateLimiter:
    def __init__(self, limit: int, counter: Counter, *, prefix: str, failopen: FailOpen | None = None,
                 component: str = "redis", clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.counter = counter
        self.prefix = prefix
        self.failopen = failopen
        self.component = component
        self._clock = clock

    @staticmethod
    def identity(scope: Scope, verified: str | None = None) -> str:
        """Whose budget a request spends: its verified key (``verified``: the key's hash), else its client
        address (an IPv6 address by its /64), hashed."""
        material = f"key:{verified}" if verified else f"ip:{address_bucket(client_host(scope))}"
        return hashlib.sha256(material.encode()).hexdigest()[:24]

    async def hit(self, identity: str) -> Decision:
        now = self._clock()
        window = int(now // WINDOW)
        reset = max(1, math.ceil((window + 1) * WINDOW - now))
        try:
            count = await self.counter.incr(f"{self.prefix}ratelimit:{identity}:{window}", WINDOW + 1)
        except BackendError as exc:
            if self.failopen is not None:
                self.failopen.failed(self.component, exc)
            return Decision(True, self.limit, self.limit, reset)
        if self.failopen is not None:
            self.failopen.succeeded(self.component)
        return Decision(count <= self.limit, self.limit, max(0, self.limit - count), reset)

    async def aclose(self) -> None:
        await self.counter.aclose()


def address_bucket(host: str | None) -> str:
    """The part of a client address that is one budget: IPv4 whole, IPv6 by its /64."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host  # a unix socket path or a name: as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
