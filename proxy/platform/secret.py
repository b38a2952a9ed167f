"""The per-install secret tenants are hashed with, so a stored tenant hash cannot be reversed by trying
likely API keys (``sk-1234``, ``ollama``) offline: HMAC-SHA256 under this secret
(:func:`proxy.core.canonical.tenant_hash`).

Where it comes from, first that applies:

1. ``TENANT_SECRET`` (any string; replicas on separate machines without a shared Redis set the same one);
2. with Redis, ``<prefix>tenant-secret``: the first replica to start writes 32 random bytes with ``SET NX``
   and every replica reads the same value, so replicas share tenants without configuring anything;
3. ``DATA_DIR/tenant.secret``, created on first start (mode 0600; two processes starting together agree on
   one: :mod:`proxy.platform.secretfile`).

If Redis is unreachable at start, the file is used and a warning says that this replica's tenants will
not match the others' until it restarts with Redis up (answers are then misses, never wrong ones).
Changing the secret changes every tenant: the cache starts cold.

A replica that took the secret from Redis keeps it there (every ``KEEP_EVERY`` seconds): a master that
lost its data (restarted without persistence, a failover before the key was copied, an eviction) would
otherwise let the next replica to start write a secret of its own, and the replicas would go on with two,
sharing neither entries nor identical misses. If Redis holds another value (one such replica was faster),
this one takes it: the replicas agree again, on one secret.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from proxy.component import Contribution, Job
from proxy.errors import BackendError
from proxy.platform.redis import RedisHome
from proxy.platform.secretfile import read_or_create

logger = logging.getLogger("cachegate.secret")

FILENAME = "tenant.secret"
#: Seconds between two checks that Redis still holds this replica's secret (one GET).
KEEP_EVERY = 2.0


class TenantSecret:
    def __init__(self, *, configured: str | None, data_dir: Path, redis: RedisHome | None, prefix: str) -> None:
        self._configured = configured
        self.path = data_dir / FILENAME
        self._redis = redis
        self._key = f"{prefix}tenant-secret"
        self._value: bytes | None = None
        self.source = "unset"

    @property
    def value(self) -> bytes:
        if self._value is None:
            raise RuntimeError("the tenant secret is read at start-up, before the first request")
        return self._value

    def contribution(self) -> Contribution:
        if self._configured or self._redis is None:
            return Contribution()
        return Contribution(jobs=[Job("tenant-secret", KEEP_EVERY, self.keep)])

    async def keep(self) -> None:
        """Write this replica's secret back if Redis lost it; take Redis's if it holds another one."""
        if self.source != "redis" or self._redis is None or self._value is None:
            return  # from the file: this replica keeps it until it restarts with Redis up
        ours = self._value
        try:
            stored = await self._from_redis(self._redis, ours.decode())
        except BackendError:
            return  # asked again at the next round
        if stored != ours:
            logger.warning("Redis holds another tenant secret than this replica's (its copy was lost and another "
                           "replica wrote its own): taking it, so the replicas agree; this replica's entries "
                           "start cold")
            self._value = stored

    async def start(self) -> None:
        if self._configured:
            self._value, self.source = self._configured.encode(), "TENANT_SECRET"
            return
        if self._redis is not None:
            try:
                self._value, self.source = await self._from_redis(self._redis), "redis"
                return
            except BackendError as exc:
                logger.warning("the tenant secret could not be read from Redis (%s): using %s, so this replica's "
                               "tenants differ from the other replicas' until it restarts with Redis up",
                               exc.message, self.path)
        self._value, self.source = self._from_file(), str(self.path)

    async def stop(self) -> None:
        return None

    async def _from_redis(self, redis: RedisHome, fresh: str | None = None) -> bytes:
        """What Redis holds, after writing ``fresh`` (a new random secret by default) if it holds nothing."""
        fresh = fresh or secrets.token_hex(32)
        await redis.call(lambda client: client.set(self._key, fresh, nx=True))
        stored = await redis.call(lambda client: client.get(self._key))
        if stored is None:
            raise BackendError("redis", f"{self._key} vanished right after it was written")
        return stored if isinstance(stored, bytes) else str(stored).encode()

    def _from_file(self) -> bytes:
        secret, made = read_or_create(self.path, lambda: secrets.token_hex(32), setting="TENANT_SECRET")
        if made:
            logger.info("made a tenant secret in %s (keep it: changing it starts the cache cold)", self.path)
        return secret.encode()
