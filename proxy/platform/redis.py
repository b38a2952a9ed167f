"""The one home for Redis: one client per process, one connection budget, one timeout, errors mapped once.

Every Redis user (the exact tier, the rate counter, the savings ledger, and later locks and the probe's
leader) takes a :class:`RedisHome` and calls Redis through it:

- :meth:`RedisHome.call` runs one command or pipeline on the shared pool and turns every failure (a
  ``RedisError``, a socket error, or no answer within ``REDIS_TIMEOUT``) into
  :class:`~proxy.errors.BackendError`, so callers fail open the same way;
- :meth:`RedisHome.get` reads one key through the batched ``MGET`` reader
  (:mod:`proxy.platform.batch`) on a connection of its own.

The pool is a ``BlockingConnectionPool``: under load callers wait for a free connection (bounded by the
timeout) instead of raising. redis-py reconnects by itself, so Redis coming back is picked up without a
restart. Nothing here does I/O until the first command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from proxy.component import Contribution, HealthCheck
from proxy.errors import BackendError
from proxy.platform.batch import BatchedReads

T = TypeVar("T")

COMPONENT = "redis"
#: What one process may hold open at once, for every user together (requests, counters, ledger flushes).
MAX_CONNECTIONS = 64
#: Every failure a Redis call can end in, whoever made it.
FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class RedisHome:
    name = COMPONENT

    def __init__(self, url: str, *, timeout: float, max_connections: int = MAX_CONNECTIONS) -> None:
        self.url = url
        self.timeout = timeout
        self.max_connections = max_connections
        self._client: aioredis.Redis | None = None
        self._reads = BatchedReads(self._mget)
        # The batcher's own connection: it sends one MGET at a time, so it needs no pool (a checkout and
        # its health check cost about 45 µs per command, measured).
        self._read_connection: aioredis.Connection | None = None

    @property
    def client(self) -> aioredis.Redis:
        """The client, created on first use (no I/O happens until a command is sent)."""
        if self._client is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=self.max_connections, timeout=self.timeout,
                socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            )
            self._client = aioredis.Redis(connection_pool=pool)
        return self._client

    def failure(self, exc: BaseException) -> BackendError:
        if isinstance(exc, TimeoutError) and not str(exc):
            return BackendError(COMPONENT, f"no answer within {self.timeout:g}s (REDIS_TIMEOUT)")
        return BackendError(COMPONENT, f"{type(exc).__name__}: {exc}")

    async def call(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``await command(client)``, bounded by the timeout; any failure raises :class:`BackendError`."""
        try:
            async with asyncio.timeout(self.timeout):
                return await command(self.client)
        except FAILURES as exc:
            raise self.failure(exc) from exc

    async def get(self, key: str) -> bytes | None:
        """One key, read together with the other reads of this moment in one ``MGET``."""
        try:
            return await self._reads.get(key)
        except FAILURES as exc:
            raise self.failure(exc) from exc

    async def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        connection = self._read_connection
        if connection is None:
            connection = self._read_connection = self.client.connection_pool.make_connection()
        # Connects on first use and again after a failure: read_response drops the connection on any
        # error, so Redis coming back is picked up by the next read.
        await connection.send_command("MGET", *keys)
        values = await connection.read_response()
        return [value.encode() if isinstance(value, str) else value for value in values]

    def script(self, source: str) -> Any:
        """A Lua script registered once (``EVALSHA``, loaded again by redis-py if Redis lost it)."""
        return self.client.register_script(source)

    async def ping(self) -> None:
        await self.call(lambda client: client.ping())

    # -- the component: /health pings Redis once for all its users; it is stopped after them --------------

    def contribution(self) -> Contribution:
        return Contribution(checks=[HealthCheck(COMPONENT, ping=self.ping)])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._reads.drain()
        if self._read_connection is not None:
            await self._read_connection.disconnect()
            self._read_connection = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
