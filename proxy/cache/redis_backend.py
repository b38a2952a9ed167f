"""Exact store on Redis (redis-py asyncio). Every failure becomes a BackendError: the cache fails open.

A ``BlockingConnectionPool`` makes callers wait for a free connection (up to the timeout) instead of
raising ``MaxConnectionsError`` under load; socket timeouts are short so a stalled Redis costs a request
at most ``timeout`` seconds before it goes to the upstream. redis-py reconnects by itself, so Redis
coming back is picked up without a restart. Reads that arrive in the same loop step share one ``MGET``
(:mod:`proxy.cache.batch`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from proxy.errors import BackendError
from proxy.platform.batch import BatchedReads


class RedisBackend:
    name = "redis"

    def __init__(self, url: str, *, timeout: float, max_connections: int = 64) -> None:
        self.url = url
        self._timeout = timeout
        self._max_connections = max_connections
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
                self.url, max_connections=self._max_connections, timeout=self._timeout,
                socket_timeout=self._timeout, socket_connect_timeout=self._timeout,
            )
            self._client = aioredis.Redis(connection_pool=pool)
        return self._client

    @staticmethod
    def _fail(exc: BaseException) -> BackendError:
        return BackendError("redis", f"{type(exc).__name__}: {exc}")

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._reads.get(key)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc

    async def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        connection = self._read_connection
        if connection is None:
            connection = self._read_connection = self.client.connection_pool.make_connection()
        # Connects on first use and again after a failure: read_response drops the connection on any
        # error, so Redis coming back is picked up by the next read.
        await connection.send_command("MGET", *keys)
        values = await connection.read_response()
        return [value.encode() if isinstance(value, str) else value for value in values]

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        try:
            await self.client.set(key, value, ex=ttl_seconds)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(await self.client.unlink(*keys))
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        try:
            async for key in self.client.scan_iter(match=pattern, count=500):
                yield key.decode() if isinstance(key, bytes) else key
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc

    async def usage(self) -> tuple[int, int]:
        # DBSIZE counts every key in the database, ours or not; cheap and good enough for a gauge.
        try:
            entries = int(await self.client.dbsize())
            memory = await self.client.info("memory")
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._fail(exc) from exc
        return entries, int(memory.get("used_memory", 0))

    async def aclose(self) -> None:
        await self._reads.drain()
        if self._read_connection is not None:
            await self._read_connection.disconnect()
            self._read_connection = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
