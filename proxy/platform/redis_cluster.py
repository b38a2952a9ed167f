"""The Redis home on a Redis Cluster (``redis+cluster://`` or ``REDIS_CLUSTER=true``).

The same calls as :class:`~proxy.platform.redis.RedisHome`, on ``redis.asyncio.cluster.RedisCluster``:

- a call names the key it touches; the key's node has its own circuit (:mod:`proxy.platform.breaker`), so
  a dead or hung master costs a timeout (and the client's topology reload that follows a failure) once per
  cool-down, and its keys are misses meanwhile, while the other masters serve theirs;
- batched reads are batched per node, one ``mget_nonatomic`` (a pipeline of per-slot ``MGET``) at a time
  for each node, so a node that hangs, fails or is skipped holds up and fails its own keys only;
- deletes, scans, key counts and ``/health`` go to every primary.

Every key cachegate uses alone or with keys of its own hash tag (``…:{digest}``), so no command spans
slots. The cluster client retries nothing itself (``Retry(NoBackoff(), 0)``: no topology reload and second
attempt inside a call; a node's connection still reconnects once) and does not insist on full coverage:
with ``cluster-require-full-coverage no`` on the servers, the healthy shards go on answering while one is
down.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from proxy.errors import BackendError
from proxy.platform.batch import BatchedReads
from proxy.platform.cluster_tracking import ClusterTracking
from proxy.platform.redis import COMPONENT, FAILURES, RedisHome
from proxy.platform.tasks import cancel_and_wait
from proxy.platform.tracking import Tracking

T = TypeVar("T")


class ClusterHome(RedisHome):
    kind = "redis-cluster"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._node_reads: dict[str, BatchedReads] = {}
        self._stale = False  # a node failed to answer: the slots may have moved (a failover)
        self._reload: asyncio.Task[None] | None = None
        self._reloaded_at = -math.inf
        self.reloads = 0

    def make_client(self) -> Any:
        target = self.target
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes], require_full_coverage=False,
            max_connections=self.max_connections, username=target.username, password=target.password,
            ssl=target.tls, **{**self.connection_options(), "retry": Retry(NoBackoff(), 0)})

    def make_tracking(self, prefix: str) -> Tracking:
        """One tracking connection per primary, tracked afresh when the primaries change."""
        return ClusterTracking(self.primaries, prefix=prefix, timeout=self.timeout)

    async def _ready(self) -> Any:
        """The client with its topology loaded (bounded). After a node failed to answer, the topology is
        asked for again in the background, at most once per cool-down, the failed nodes asked last
        (redis-py's pipelines, which the reads use, never reload it without retries): after a failover the
        slots go to the new primary, and no request waits for the reload."""
        client = self.client
        await self.attempt(None, client.initialize)
        now = time.monotonic()
        if self._stale and self._reload is None and now - self._reloaded_at >= self.breaker.cooldown:
            self._reloaded_at = now
            self._reload = asyncio.get_running_loop().create_task(self._reload_topology(client))
        return client

    async def _reload_topology(self, client: Any) -> None:
        try:
            for node in self.breaker.open_nodes():
                client.nodes_manager.move_node_to_end_of_cached_nodes(node)
            await self.attempt(None, client.nodes_manager.initialize)
            self._stale = False
            self.reloads += 1
        except BackendError:
            pass  # asked again after the next failure, a cool-down later
        finally:
            self._reload = None

    async def attempt(self, node: str | None, command: Callable[[], Awaitable[T]], *,
                      until: float | None = None) -> T:
        try:
            return await super().attempt(node, command, until=until)
        except BackendError:
            if node is not None and self.breaker.is_open(node):
                self._stale = True
            raise

    def node_of(self, client: Any, key: str) -> str:
        try:
            return str(client.get_node_from_key(key).name)
        except FAILURES as exc:  # a slot no node serves (after a failure, before the topology is reloaded)
            raise self.failure(exc) from exc

    async def call(self, command: Callable[[Any], Awaitable[T]], *, key: str | None = None) -> T:
        client = await self._ready()
        return await self.guarded(self.node_of(client, key) if key is not None else None, lambda: command(client))

    async def command(self, *args: Any, key: str | None = None) -> Any:
        # the cluster client routes by key and keeps per-node pools: it sends the command (callbacks run)
        return await self.call(lambda client: client.execute_command(*args), key=key)

    async def get(self, key: str) -> bytes | None:
        """One key, batched with the other reads of this moment for the same node: each node has its own
        batcher, so a hung node holds up its own keys only. One deadline from when it was asked, and its
        expiry is told to the node's circuit at once: the request's next call to that node (its flight's
        lease, say) is skipped instead of waiting a second timeout."""
        until = asyncio.get_running_loop().time() + self.timeout

        client = await self._ready()
        node = self.node_of(client, key)
        if not self.breaker.allow(node):
            raise self.skipped(node)
        reads = self._node_reads.get(node)
        if reads is None:
            reads = self._node_reads[node] = BatchedReads(functools.partial(self._fetch_node, client, node))
        return await self.attempt(node, lambda: reads.get(key), until=until)

    async def _fetch_node(self, client: Any, node: str, keys: Sequence[str]) -> list[bytes | None]:
        """One node's keys in one ``mget_nonatomic`` (a pipeline of per-slot ``MGET``s); its circuit is told."""
        return list(await self.attempt(node, lambda: client.mget_nonatomic(list(keys))))

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        client = await self._ready()
        by_node: dict[str, list[str]] = {}
        for key in keys:
            by_node.setdefault(self.node_of(client, key), []).append(key)
        removed = 0
        for node, node_keys in by_node.items():  # redis-py splits each node's keys by slot
            removed += int(await self.guarded(node, functools.partial(client.unlink, *node_keys)))
        return removed

    async def primaries(self) -> list[Any]:
        client = await self._ready()
        return list(client.get_primaries())

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        client = await self._ready()
        for primary in client.get_primaries():
            async def scan_one(node: Any = primary, **options: Any) -> Any:
                cursors, keys = await client.scan(target_nodes=node, **options)
                return cursors[node.name], keys

            async for key in self._scan_node(primary.name, scan_one, pattern):
                yield key

    async def usage(self) -> tuple[int, int]:
        """(keys in the cluster, bytes its primaries use), summed over the primaries that answered."""
        async def one(node: Any) -> tuple[int, int]:
            client = self.client
            keys = await self.guarded(node.name, lambda: client.dbsize(target_nodes=node))
            memory = await self.guarded(node.name, lambda: client.info("memory", target_nodes=node))
            return int(keys), int(memory.get("used_memory", 0))

        answers = await asyncio.gather(*(one(node) for node in await self.primaries()), return_exceptions=True)
        counted = [answer for answer in answers if not isinstance(answer, BaseException)]
        if not counted:
            raise next(a for a in answers if isinstance(a, BaseException))
        return sum(keys for keys, _ in counted), sum(size for _, size in counted)

    async def ping(self) -> None:
        """Every primary, each even while its circuit is open; raises naming the ones that did not answer."""
        client = await self._ready()

        async def one(node: Any) -> str | None:
            self.breaker.succeeded(node.name)
            try:
                await self.guarded(node.name, lambda: client.ping(target_nodes=node))
            except BackendError as exc:
                return f"{node.name}: {exc.message.removeprefix(COMPONENT + ': ')}"
            return None

        down = [problem for problem in await asyncio.gather(*(one(n) for n in client.get_primaries())) if problem]
        if down:
            raise BackendError(COMPONENT, f"{len(down)} of {len(client.get_primaries())} primaries down: "
                                          + "; ".join(down))

    async def aclose(self) -> None:
        if self._reload is not None:
            await cancel_and_wait(self._reload)
        for reads in self._node_reads.values():
            await reads.drain(self.timeout)
        self._node_reads = {}
        await super().aclose()
