"""The Redis home on a Redis Cluster (``redis+cluster://`` or ``REDIS_CLUSTER=true``).

The same calls as :class:`~proxy.platform.redis.RedisHome`, on ``redis.asyncio.cluster.RedisCluster``:

- a call names the key it touches; the key's node has its own circuit (:mod:`proxy.platform.breaker`), so
  a dead or hung master costs a timeout (and the client's topology reload that follows a failure) once per
  cool-down, and its keys are misses meanwhile, while the other masters serve theirs;
- batched reads are split by node, one ``mget_nonatomic`` (a pipeline of per-slot ``MGET``) per node,
  concurrently; a node that fails or is skipped fails its own keys only;
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from proxy.errors import BackendError
from proxy.platform.redis import COMPONENT, RedisHome

T = TypeVar("T")


class ClusterHome(RedisHome):
    kind = "redis-cluster"

    def make_client(self) -> Any:
        target = self.target
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes], require_full_coverage=False,
            max_connections=self.max_connections, username=target.username, password=target.password,
            ssl=target.tls, **{**self.connection_options(), "retry": Retry(NoBackoff(), 0)})

    async def _ready(self) -> Any:
        """The client with its topology loaded: a no-op once loaded, a reload after a failure made the
        client drop it (the breaker makes that once per cool-down, not once per request); bounded."""
        client = self.client
        await self.guarded(None, client.initialize)
        return client

    def node_of(self, client: Any, key: str) -> str:
        return str(client.get_node_from_key(key).name)

    async def call(self, command: Callable[[Any], Awaitable[T]], *, key: str | None = None) -> T:
        client = await self._ready()
        return await self.guarded(self.node_of(client, key) if key is not None else None, lambda: command(client))

    async def get(self, key: str) -> bytes | None:
        # The deadline only: each node's circuit is kept by the fetch, which fails a node's keys alone.
        return await self.guarded(None, lambda: self._reads.get(key))

    async def _fetch(self, keys: Sequence[str]) -> list[bytes | BaseException | None]:
        """Each node's keys in one ``mget_nonatomic``, the nodes concurrently; a failed node's keys get its
        error (the batcher hands it to their callers only)."""
        client = await self._ready()
        by_node: dict[str, list[str]] = {}
        for key in keys:
            by_node.setdefault(self.node_of(client, key), []).append(key)

        async def read(node: str, node_keys: list[str]) -> list[bytes | BaseException | None]:
            try:
                return list(await self.guarded(node, lambda: client.mget_nonatomic(node_keys)))
            except BackendError as exc:
                return [exc] * len(node_keys)

        answers = await asyncio.gather(*(read(node, node_keys) for node, node_keys in by_node.items()))
        values = {key: value for node_keys, node_values in zip(by_node.values(), answers, strict=True)
                  for key, value in zip(node_keys, node_values, strict=True)}
        return [values[key] for key in keys]

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
