"""The Redis home on a master that Redis Sentinel watches (``redis+sentinel://``).

The same calls as :class:`~proxy.platform.redis.RedisHome`, through redis-py's Sentinel client: after a
failover the next connection goes to the new master. Everything that would keep a connection of its own
(the batched reader, the command lane) goes through the pool instead, whose connections ask the sentinels
where the master is; the tracking connection asks them itself each time it connects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from proxy.platform.redis import RedisHome
from proxy.platform.redis_lane import CommandLane
from proxy.platform.tracking import tracking_options


class SentinelHome(RedisHome):
    """The master the sentinels name: after a failover the next connection goes to the new master."""

    kind = "redis-sentinel"
    _sentinel: Any = None

    def make_client(self) -> Any:
        target = self.target
        options = {**self.connection_options(), "ssl": target.tls, "db": target.db}
        credentials = {"username": target.username, "password": target.password}
        sentinel = Sentinel(list(target.nodes), min_other_sentinels=0,
                            sentinel_kwargs={k: v for k, v in options.items() if k != "db"}, **options, **credentials)
        self._sentinel = sentinel
        return sentinel.master_for(target.service or "", max_connections=self.max_connections)

    async def tracking_connection(self) -> Any:
        """A plain connection to the master the sentinels name now (after a failover they kill the old
        master's pub/sub clients, so the tracker connects again, here, to the new one)."""
        pool = self.client.connection_pool
        host, port = await self._sentinel.discover_master(self.target.service or "")
        connection_class = aioredis.SSLConnection if self.target.tls else aioredis.Connection
        return connection_class(**{**tracking_options(pool.connection_kwargs), "host": host, "port": port})

    async def _fetch(self, keys: Sequence[str]) -> list[bytes | BaseException | None]:
        # Through the pool: its connections ask the sentinels where the master is (a bare connection
        # made by the pool would not, in redis-py 8).
        return list(await self.client.mget(list(keys)))

    def make_lane(self) -> CommandLane:
        return CommandLane(self.client.connection_pool, size=0)  # every command through the pool, as above
