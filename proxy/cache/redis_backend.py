"""Exact store on Redis, through the process's one :class:`~proxy.platform.redis.RedisHome`.

The home bounds every call by ``REDIS_TIMEOUT`` and turns every failure into a ``BackendError``, so the
cache fails open; reads that arrive together share one ``MGET`` (one per node of a cluster); deletes,
scans and counts reach every primary. Keys end in their digest's hash tag (``…:{digest}``), so in a
cluster each entry lives on one node and the keys used with it (its lease) beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from proxy.cache.stats import LevelReport, LevelStats
from proxy.platform.redis import RedisHome

NOTE = ("bytes, bound and evictions are the Redis server's (used_memory, maxmemory, evicted_keys, expired_keys: "
        "what its own eviction acts on); entries counts cachegate's exact-tier keys only")


class RedisBackend:
    name = "redis"
    remote = True

    def __init__(self, home: RedisHome) -> None:
        self.home = home
        self.stats = LevelStats()

    def peek(self, key: str) -> bytes | None:
        return None  # nothing is held in the process: every read is I/O

    async def get(self, key: str) -> bytes | None:
        return await self.home.get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        await self.home.command("SET", key, value, "EX", ttl_seconds, key=key)
        return True  # what Redis then evicts, it counts itself (evicted_keys)

    async def delete(self, keys: Sequence[str]) -> int:
        return await self.home.delete(keys)

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        async for key in self.home.scan(pattern):
            yield key

    async def ping(self) -> None:
        await self.home.ping()

    async def usage(self) -> tuple[int, int]:
        # DBSIZE (summed over a cluster's primaries) counts every key in the database, ours or not: cheap,
        # and exact when cachegate has its Redis to itself (counting ours alone would be a SCAN of all).
        return await self.home.usage()

    async def report(self) -> LevelReport:
        """The server's memory and bound, and its eviction counters (Redis evicts, not cachegate: they are
        copied into :attr:`stats`). Entries are left to the exact tier, which counts its own keys (SCAN)."""
        memory, counts = await self.home.call(lambda client: _info(client))
        self.stats.evictions["size"] = int(counts.get("evicted_keys", 0))
        self.stats.evictions["expiry"] = int(counts.get("expired_keys", 0))
        return LevelReport(entries=None, bytes=int(memory.get("used_memory", 0)),
                           bound=int(memory.get("maxmemory", 0)) or None, note=NOTE)

    async def touch(self, hits: Mapping[str, int]) -> None:
        # Hits the local copy in front answered never reached Redis: without this, the hottest entries would
        # look the coldest to its eviction (maxmemory with an LRU or LFU policy) and go first.
        await self.home.touch(list(hits))

    async def maintain(self) -> None:
        return None  # Redis expires and evicts by itself

    async def aclose(self) -> None:
        return None  # the home is closed by the composition root, after every user of it



async def _info(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return await client.info("memory"), await client.info("stats")
