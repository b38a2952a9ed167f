"""Which backend serves each contract, chosen by name (as uvicorn's ``HTTP_PROTOCOLS``): the one place that
knows which classes exist.

The settings name a kind for each family (:func:`store_kind`: ``redis`` with REDIS_URL, else ``memory``;
:func:`exact_levels`: the exact tier's levels, ``memory`` then ``disk`` without Redis;
:func:`semantic_store_kind`; :func:`embedder_kind`), and each registry maps that name to a factory with
one signature per contract. Adding a backend is adding a module and a line here. Heavy modules (qdrant-edge,
qdrant-client, the model) are imported only by the factory that needs them.
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.access.ratelimit import Counter, MemoryCounter, RedisCounter
from proxy.cache.disk import FILENAME as DISK_FILENAME
from proxy.cache.disk import DiskBackend
from proxy.cache.memory import MemoryBackend
from proxy.cache.redis_backend import RedisBackend
from proxy.contracts import Embedder, ExactBackend, SemanticBackend
from proxy.monitoring.ledger import LedgerStore, RedisLedgerStore, SqliteLedgerStore
from proxy.platform.redis import RedisHome
from proxy.platform.sqlite import Database
from proxy.settings import Settings


def store_kind(settings: Settings) -> str:
    """Where shared state lives: ``redis`` (REDIS_URL) or ``memory`` (this process, and SQLite under DATA_DIR)."""
    return "redis" if settings.redis_url else "memory"


def exact_levels(settings: Settings) -> tuple[str, ...]:
    """The exact tier's levels, first first: Redis alone, or the in-process LRU in front of the disk (unless
    CACHE_DISK_MAX_BYTES=0)."""
    if settings.redis_url:
        return ("redis",)
    return ("memory", "disk") if settings.cache_disk_max_bytes > 0 else ("memory",)


def semantic_store_kind(settings: Settings) -> str:
    return "qdrant" if settings.qdrant_url else "qdrant-edge"


def embedder_kind(settings: Settings) -> str:
    return "http" if settings.embedding_url else "in-process"


def _home(redis: RedisHome | None) -> RedisHome:
    if redis is None:
        raise RuntimeError("a Redis backend was chosen without a Redis home")
    return redis


# -- exact tier, rate counters, savings ledger: (settings, the Redis home if any) ---------------------------

EXACT_BACKENDS: dict[str, Callable[[Settings, RedisHome | None], ExactBackend]] = {
    "memory": lambda settings, _: MemoryBackend(settings.cache_max_bytes),
    "disk": lambda settings, _: DiskBackend(settings.data_path / DISK_FILENAME, settings.cache_disk_max_bytes,
                                            policy=settings.cache_disk_eviction),
    "redis": lambda _, redis: RedisBackend(_home(redis)),
}

RATE_COUNTERS: dict[str, Callable[[RedisHome | None], Counter]] = {
    "memory": lambda _: MemoryCounter(),
    "redis": lambda redis: RedisCounter(_home(redis)),
}

LEDGER_STORES: dict[str, Callable[[Settings, RedisHome | None, Database], LedgerStore]] = {
    "memory": lambda _, __, database: SqliteLedgerStore(database),
    "redis": lambda settings, redis, _: RedisLedgerStore(_home(redis), prefix=settings.cache_key_prefix),
}


# -- semantic tier: (settings) ---------------------------------------------------------------------------


def _qdrant(settings: Settings) -> SemanticBackend:
    from proxy.semantic.qdrant import QdrantBackend

    return QdrantBackend(settings.qdrant_url, api_key=settings.qdrant_api_key, collection=settings.qdrant_collection,
                         timeout=settings.qdrant_timeout)


def _edge(settings: Settings) -> SemanticBackend:
    from proxy.semantic.edge import EdgeBackend

    return EdgeBackend(settings.data_path / "semantic" / settings.qdrant_collection, timeout=settings.qdrant_timeout)


def _http_embedder(settings: Settings) -> Embedder:
    from embedding_service.client import HttpEmbedder

    return HttpEmbedder(settings.embedding_url or "", timeout=settings.embedding_timeout)


def _local_embedder(settings: Settings) -> Embedder:
    from embedding_service.local import LocalEmbedder
    from proxy.semantic.encoders import LOCAL_BATCH_WINDOW_MS, shared_encoder

    return LocalEmbedder(shared_encoder(), window_ms=LOCAL_BATCH_WINDOW_MS)


SEMANTIC_STORES: dict[str, Callable[[Settings], SemanticBackend]] = {"qdrant": _qdrant, "qdrant-edge": _edge}
EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {"http": _http_embedder, "in-process": _local_embedder}
