"""Rate limiting of the proxied API (``/v1/*``): a fixed one-minute window per API key or client IP.

With ``REDIS_URL`` the counters live in Redis under the key prefix (one ``INCR`` + ``EXPIRE`` in a Lua
script: atomic, one round trip), so every replica shares one budget; otherwise they live in the process.
If Redis fails the request is let through (fail open) and the failure is reported like any cache
dependency's. Callers are told where they stand with ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until the window ends); the one over budget gets a 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.access.auth import client_host
from proxy.core.canonical import api_key_of
from proxy.errors import BackendError, RateLimitedError
from proxy.http.asgi import headers_of
from proxy.http.responses import error_response
from proxy.platform.failopen import FailOpen
from proxy.platform.redis import RedisHome

WINDOW = 60

_INCR = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


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
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._window: int | None = None

    async def incr(self, key: str, ttl: int) -> int:
        window = int(key.rsplit(":", 1)[-1])
        if window != self._window:  # keys of earlier windows are never read again
            self._counts = {k: v for k, v in self._counts.items() if k.endswith(f":{window}")}
            self._window = window
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    async def aclose(self) -> None:
        self._counts.clear()


class RedisCounter:
    """Counters shared by every replica, through the process's one Redis home."""

    def __init__(self, home: RedisHome) -> None:
        self._home = home
        self._script = home.script(_INCR)

    async def incr(self, key: str, ttl: int) -> int:
        # one key: in a cluster the script runs on the key's node
        return int(await self._home.call(lambda client: self._script(keys=[key], args=[ttl], client=client),
                                         key=key))

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
    def identity(scope: Scope) -> str:
        """Whose budget a request spends: its API key (hashed), else its client address (hashed too)."""
        key = api_key_of(headers_of(scope))
        material = f"key:{key}" if key else f"ip:{client_host(scope) or 'unknown'}"
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


class RateLimited:
    """Pure ASGI around a ``Guard.CLIENT`` route: adds the headers to every answer and refuses the request
    over budget."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        decision = await self.limiter.hit(self.limiter.identity(scope))
        if not decision.allowed:
            error = RateLimitedError(f"Rate limit of {decision.limit} requests per minute reached; "
                                     f"retry in {decision.reset} s.", retry_after=decision.reset)
            response = error_response(error, headers=[*decision.headers(), ("retry-after", str(error.retry_after))])
            await response(scope, receive, send)
            return
        extra = [(name.encode(), value.encode()) for name, value in decision.headers()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
