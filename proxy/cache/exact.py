"""The exact tier: one wrapper around any :class:`ExactBackend`.

Serialising (:class:`CachedResponse`), expiry checks, metrics and fail-open handling live here once, so
the memory and Redis backends only move bytes and behave the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from proxy.cache.entry import CachedResponse, EntryFormatError
from proxy.component import Contribution, HealthCheck
from proxy.contracts import ExactBackend, Observer
from proxy.core.canonical import exact_pattern
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen

logger = logging.getLogger("cachegate.exact")

#: Decoded entries kept for an in-process backend, which hands back the very bytes object it stored: a
#: repeated hit reuses the decoded entry (and what it worked out: usage, id spans) instead of decoding the
#: envelope again. Bounded in count and in body size, so it holds at most a few MB.
DECODED = 512
DECODED_MAX_BODY = 8192


class ExactCache:
    def __init__(self, backend: ExactBackend, *, prefix: str, observer: Observer, failopen: FailOpen,
                 clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.prefix = prefix
        self._observer = observer
        self._failopen = failopen
        self._clock = clock
        self._decoded: dict[str, tuple[bytes, CachedResponse]] | None = None if backend.remote else {}

    @property
    def component(self) -> str:
        return self.backend.name

    async def lookup(self, key: str) -> CachedResponse | None:
        started = time.perf_counter()
        try:
            raw = await self.backend.get(key)
        except BackendError as exc:
            self._failopen.failed(self.component, exc)
            self._observer.cache_lookup("exact", "error", time.perf_counter() - started)
            return None
        entry = None
        if raw is not None:
            entry = await self._decode(key, raw)
            if entry is not None and entry.expired(self._clock()):
                entry = None
        self._failopen.succeeded(self.component)
        self._observer.cache_lookup("exact", "miss" if entry is None else "hit", time.perf_counter() - started)
        return entry

    async def _decode(self, key: str, raw: bytes) -> CachedResponse | None:
        decoded = self._decoded
        if decoded is not None:
            known = decoded.get(key)
            if known is not None and known[0] is raw:
                return known[1]
        try:
            entry = CachedResponse.decode(raw)
        except EntryFormatError as exc:
            logger.warning("dropping unreadable entry %s: %s", key, exc)
            await self.delete([key])
            return None
        if decoded is not None and len(entry.body) <= DECODED_MAX_BODY:
            if len(decoded) >= DECODED:
                del decoded[next(iter(decoded))]  # the oldest first
            decoded[key] = (raw, entry)
        return entry

    async def store(self, key: str, entry: CachedResponse) -> bool:
        try:
            await self.backend.set(key, entry.encode(), entry.ttl)
        except BackendError as exc:
            self._failopen.failed(self.component, exc)
            return False
        self._failopen.succeeded(self.component)
        return True

    async def delete(self, keys: list[str]) -> int:
        try:
            return await self.backend.delete(keys)
        except BackendError as exc:
            self._failopen.failed(self.component, exc)
            raise

    async def clear(self, *, model: str | None = None, namespace: str | None = None) -> int:
        """Remove this tier's entries (narrowed by model/namespace); only keys under our prefix are touched."""
        removed = 0
        batch: list[str] = []
        async for key in self.backend.scan(exact_pattern(self.prefix, model=model, namespace=namespace)):
            batch.append(key)
            if len(batch) >= 500:
                removed += await self.delete(batch)
                batch = []
        if batch:
            removed += await self.delete(batch)
        return removed

    async def usage(self) -> tuple[int, int]:
        return await self.backend.usage()

    # -- the component: a server backend is checked through its home (the Redis home), so only an in-process
    # store is named here

    def contribution(self) -> Contribution:
        if self.backend.remote:
            return Contribution()
        return Contribution(checks=[HealthCheck("exact_cache", embedded=self.backend.name)])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.backend.aclose()
