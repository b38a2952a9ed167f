"""The one home for Redis: one client per process, one connection budget, one deadline, errors mapped once.

Every Redis user (the exact tier, the rate counter, the savings ledger, the feedback book, locks) takes a
:class:`RedisHome` and reaches Redis only through it:

- :meth:`RedisHome.call` runs one command or pipeline, bounded by ``REDIS_TIMEOUT`` from the moment it was
  asked, and turns every failure (a ``RedisError``, a cluster error, a socket error, no answer in time)
  into :class:`~proxy.errors.BackendError`, so callers fail open the same way; ``key`` names the key the
  command touches (in a cluster: the node it goes to);
- :meth:`RedisHome.get` reads one key through the batched reader (:mod:`proxy.platform.batch`), with the
  same deadline: a read queued behind a stuck one gives up when *its* time is up, not one timeout later;
- :meth:`RedisHome.delete`, :meth:`RedisHome.scan` and :meth:`RedisHome.usage` reach every primary.

A :class:`~proxy.platform.breaker.Breaker` per node skips a node for ``REDIS_COOLDOWN`` seconds after it
failed to answer, so an outage costs a timeout per cool-down rather than per request. The client retries
only a broken connection, once and at once (never a timeout), and the deadline bounds even that.

This module is the single server (``redis://``); the Sentinel-watched master (``redis+sentinel://``) is
:mod:`proxy.platform.redis_sentinel`, the cluster :mod:`proxy.platform.redis_cluster`. The registry picks one by the
target's kind. Nothing here does I/O until the first command.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    MaxConnectionsError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.component import Contribution, HealthCheck
from proxy.errors import BackendError
from proxy.platform.batch import BatchedReads
from proxy.platform.breaker import Breaker
from proxy.platform.redis_lane import CommandLane, LuaScript
from proxy.platform.redis_url import RedisTarget
from proxy.platform.tracking import Tracker, Tracking, tracking_options

T = TypeVar("T")

COMPONENT = "redis"
#: What one process may hold open at once (per node in a cluster), for every user together; the batched
#: reader's connection and the command lane's few (redis_lane.LANE_SIZE) come on top.
MAX_CONNECTIONS = 64
#: Seconds a node is skipped after it failed to answer (``REDIS_COOLDOWN``'s default).
COOLDOWN = 1.0
#: Every failure a Redis call can end in, whoever made it. In redis-py 8 ``RedisClusterException`` (a
#: cross-slot command, no node for a slot, a topology that cannot be loaded) is not a ``RedisError``.
#: redis-py's asyncio client, when a connection is torn down under a command that is using it (a node killed
#: or restarted while requests run on it; a topology reload dropping a node's connections), can fail inside
#: itself instead of raising a ConnectionError: ``'NoneType' object has no attribute 'writelines'`` (seen by
#: bench/fault_bench.py when a cluster master was killed and restarted; redis/redis-py#3546 and #3835 are
#: others of the kind). They are a broken connection to that node, so an outage, and never a request's 500.
TORN: tuple[type[BaseException], ...] = (AttributeError, TypeError)
FAILURES: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError, TimeoutError, *TORN)
#: The failures that say a node did not answer (its circuit opens); the rest are answers (it is up).
OUTAGES: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ClusterDownError,
                                            SlotNotCoveredError, OSError, TimeoutError, *TORN)
NODE = "primary"
SCAN_COUNT = 500


def reconnect_once() -> Retry:
    """One immediate retry on a broken connection (a pooled one left over from before a restart fails once,
    and a refused reconnect costs nothing), none on a timeout: a hung server is waited for once."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def is_outage(exc: BaseException) -> bool:
    # a full local pool is our own load, not the node's fault
    return isinstance(exc, OUTAGES) and not isinstance(exc, MaxConnectionsError)


class RedisHome:
    """One Redis server."""

    name = COMPONENT
    kind = "redis"

    def __init__(self, target: RedisTarget, *, timeout: float, cooldown: float = COOLDOWN,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.target = target
        self.timeout = timeout
        self.max_connections = max_connections
        self.breaker = Breaker(cooldown)
        self._client: Any = None
        self._reads = BatchedReads(self._fetch)
        # The batcher's own connection: it sends one MGET at a time, so it needs no pool (a checkout and
        # its health check cost about 45 µs per command, measured).
        self._read_connection: aioredis.Connection | None = None
        self._lane: CommandLane | None = None  # single commands on connections of their own (redis_lane)
        self._tracking: Tracking | None = None

    @property
    def url(self) -> str:
        return self.target.url

    def connection_options(self) -> dict[str, Any]:
        return {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                "retry": reconnect_once()}

    def make_client(self) -> Any:
        pool = aioredis.BlockingConnectionPool.from_url(self.target.url, max_connections=self.max_connections,
                                                        timeout=self.timeout, **self.connection_options())
        return aioredis.Redis(connection_pool=pool)

    @property
    def client(self) -> Any:
        """The client, created on first use (no I/O happens until a command is sent)."""
        if self._client is None:
            self._client = self.make_client()
        return self._client

    # -- errors ------------------------------------------------------------------------------------------

    def failure(self, exc: BaseException) -> BackendError:
        if isinstance(exc, TimeoutError) and not str(exc):
            return BackendError(COMPONENT, f"no answer within {self.timeout:g}s (REDIS_TIMEOUT)")
        return BackendError(COMPONENT, f"{type(exc).__name__}: {exc}")

    def skipped(self, node: str) -> BackendError:
        return BackendError(COMPONENT, f"{node} skipped for up to {self.breaker.cooldown:g}s (REDIS_COOLDOWN) "
                                       f"after {self.breaker.reason(node) or 'a failure'}")

    async def guarded(self, node: str | None, command: Callable[[], Awaitable[T]]) -> T:
        """``await command()`` on ``node``: skipped while its circuit is open, else :meth:`attempt`.
        ``node=None``: a call no one node answers for (bounded and mapped, no circuit)."""
        if node is not None and not self.breaker.allow(node):
            raise self.skipped(node)
        return await self.attempt(node, command)

    async def attempt(self, node: str | None, command: Callable[[], Awaitable[T]], *,
                      until: float | None = None) -> T:
        """``await command()`` bounded by the timeout (or by the loop time ``until``), failures mapped and told
        to ``node``'s circuit."""
        try:
            async with asyncio.timeout_at(until) if until is not None else asyncio.timeout(self.timeout):
                result = await command()
        except FAILURES as exc:
            failure = self.failure(exc)
            if node is not None and is_outage(exc):
                self.breaker.failed(node, failure.message.removeprefix(f"{COMPONENT}: "))
            raise failure from exc
        if node is not None:
            self.breaker.succeeded(node)
        return result

    # -- what every user calls ------------------------------------------------------------------------------

    async def call(self, command: Callable[[Any], Awaitable[T]], *, key: str | None = None) -> T:
        """``await command(client)`` (touching ``key``, if it touches one); any failure raises BackendError."""
        return await self.guarded(NODE, lambda: command(self.client))

    async def get(self, key: str) -> bytes | None:
        """One key, read together with the other reads of this moment."""
        return await self.guarded(NODE, lambda: self._reads.get(key))

    async def command(self, *args: Any, key: str | None = None) -> Any:
        """One command (touching ``key``), answered raw: bytes, integers, ``None``; no response callbacks (a
        ``SET`` that was done answers ``b"OK"`` here, or ``True`` where a client's callback ran: test the truth
        of it). Sent on the lane (:mod:`proxy.platform.redis_lane`); failures as :meth:`call`'s."""
        return await self.guarded(NODE, lambda: self.lane.execute(*args))

    async def run_script(self, script: LuaScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """``script`` on ``keys`` (the first names the node in a cluster) with ``args``: by its SHA, in full
        when Redis does not know it."""
        try:
            return await self.command("EVALSHA", script.sha, len(keys), *keys, *args, key=keys[0])
        except BackendError as exc:
            if not isinstance(exc.__cause__, NoScriptError):
                raise
        return await self.command("EVAL", script.source, len(keys), *keys, *args, key=keys[0])

    @property
    def lane(self) -> CommandLane:
        if self._lane is None:
            self._lane = self.make_lane()
        return self._lane

    def make_lane(self) -> CommandLane:
        return CommandLane(self.client.connection_pool)

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self.call(lambda client: client.unlink(*keys)))

    async def touch(self, keys: Sequence[str]) -> None:
        """Tell Redis ``keys`` were read (``TOUCH``: their LRU clock or LFU counter, which its eviction goes by),
        a chunk at a time; a cluster client splits each chunk by slot."""
        for start in range(0, len(keys), SCAN_COUNT):
            await self.call(functools.partial(_touch, keys=keys[start:start + SCAN_COUNT]))

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        """Every key matching ``pattern`` (each step bounded like any call)."""
        async for key in self._scan_node(NODE, self.client.scan, pattern):
            yield key

    async def _scan_node(self, node: str, scan: Callable[..., Awaitable[Any]], pattern: str) -> AsyncIterator[str]:
        cursor: Any = 0
        while True:
            cursor, keys = await self.guarded(node, functools.partial(scan, cursor=cursor, match=pattern,
                                                                      count=SCAN_COUNT))
            for key in keys:
                yield key.decode() if isinstance(key, bytes) else key
            if not cursor:
                return

    async def usage(self) -> tuple[int, int]:
        """(keys in the database, bytes the server uses): DBSIZE counts every key, ours or not."""
        keys = int(await self.call(lambda client: client.dbsize()))
        memory = await self.call(lambda client: client.info("memory"))
        return keys, int(memory.get("used_memory", 0))

    async def ping(self) -> None:
        """Ask the server even while its circuit is open: an answer closes it (``/health`` runs this)."""
        self.breaker.succeeded(NODE)
        await self.guarded(NODE, lambda: self.client.ping())

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "open_circuits": self.breaker.open_nodes(), "skipped": self.breaker.skipped}

    # -- the batched reader's fetch --------------------------------------------------------------------------

    async def _fetch(self, keys: Sequence[str]) -> list[bytes | BaseException | None]:
        connection = self._read_connection
        if connection is None:
            connection = self._read_connection = self.client.connection_pool.make_connection()
        # Connects on first use and again after a failure: read_response drops the connection on any
        # error (a timeout, a cancellation), so no answer is ever read as another command's.
        await connection.send_command("MGET", *keys)
        values = await connection.read_response()
        return [value.encode() if isinstance(value, str) else value for value in values]

    # -- client-side caching: what tells the exact tier's local copy which keys changed (proxy.platform.tracking)

    def tracking(self, prefix: str) -> Tracking:
        """The tracking of keys under ``prefix`` (made on first use; it connects when the home starts)."""
        if self._tracking is None:
            self._tracking = self.make_tracking(prefix)
        return self._tracking

    def make_tracking(self, prefix: str) -> Tracking:
        return Tracker(self.tracking_connection, prefix=prefix, timeout=self.timeout)

    async def tracking_connection(self) -> Any:
        """A connection of its own to the server (not yet connected), made like the pool's."""
        pool = self.client.connection_pool
        return pool.connection_class(**tracking_options(pool.connection_kwargs))

    # -- the component: /health pings Redis once for all its users; it is stopped after them --------------

    def contribution(self) -> Contribution:
        checks = [HealthCheck(COMPONENT, ping=self.ping)]
        if self._tracking is not None:  # non-critical: without it hits go to Redis, a little slower
            checks.append(HealthCheck("redis_client_cache", ping=self._tracking.check,
                                      details=self._tracking.status, critical=False))
        return Contribution(checks=checks)

    async def start(self) -> None:
        if self._tracking is not None:
            self._tracking.start()

    async def stop(self) -> None:
        if self._tracking is not None:
            await self._tracking.stop()
        await self.aclose()

    async def aclose(self) -> None:
        await self._reads.drain(self.timeout)
        if self._read_connection is not None:
            await self._read_connection.disconnect()
            self._read_connection = None
        if self._lane is not None:
            await self._lane.aclose()
            self._lane = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _touch(client: Any, keys: Sequence[str]) -> Any:
    return await client.touch(*keys)
