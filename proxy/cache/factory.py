"""Choose the backends from the settings: the only place that knows which classes exist."""

from __future__ import annotations

from proxy.cache.memory import MemoryBackend
from proxy.cache.redis_backend import RedisBackend
from proxy.contracts import ExactBackend
from proxy.settings import Settings


def make_exact_backend(settings: Settings) -> ExactBackend:
    if settings.redis_url:
        return RedisBackend(settings.redis_url, timeout=settings.redis_timeout)
    return MemoryBackend(settings.cache_max_bytes)
