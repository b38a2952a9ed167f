"""Which backend serves each contract, chosen by name (as uvicorn's ``HTTP_PROTOCOLS``): the one place that
knows which classes exist.

The settings name a kind for each family (:func:`store_kind`: ``memory`` without REDIS_URL, else the kind
of Redis it names, ``redis``, ``redis-cluster`` or ``redis-sentinel``; :func:`exact_levels`: the exact tier's
levels, ``memory`` then ``disk`` without Redis, ``redis-local`` then the kind of Redis with it;
:func:`history_kind`: ``postgres`` with DATABASE_URL, else ``sqlite``; :func:`ledger_kind`;
:func:`semantic_store_kind`; :func:`embedder_kind`), and each registry maps that name to a factory with one
signature per contract. Adding a backend is adding a module and a line here.
Heavy modules (qdrant-edge, qdrant-client, the model, asyncpg) are imported only by the factory that needs
them.
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.access.ratelimit import Counter, MemoryCounter, RedisCounter
from proxy.cache.disk import FILENAME as DISK_FILENAME
from proxy.cache.disk import DiskBackend
from proxy.cache.memory import MemoryBackend
from proxy.cache.redis_backend import RedisBackend
from proxy.cache.tracked import NAME as TRACKED
from proxy.cache.tracked import TrackedCopy
from proxy.contracts import Embedder, ExactBackend, SemanticBackend
from proxy.errors import SettingsError
from proxy.monitoring.ledger import LedgerStore, RedisLedgerStore, SqlLedgerStore
from proxy.platform.locks import Locks, MemoryLocks, RedisLocks
from proxy.platform.redis import RedisHome
from proxy.platform.redis_cluster import ClusterHome
from proxy.platform.redis_sentinel import SentinelHome
from proxy.platform.redis_url import KINDS as REDIS_KINDS
from proxy.platform.redis_url import RedisTarget, parse_redis_url
from proxy.platform.sql import Schema, SqlDatabase
from proxy.platform.sqlite import Database
from proxy.semantic.feedback import FeedbackStore, MemoryFeedbackStore, RedisFeedbackStore
from proxy.semantic.verifier import OnnxVerifier, Verifier
from proxy.settings import Settings


def redis_target(settings: Settings) -> RedisTarget | None:
    """What REDIS_URL (with REDIS_CLUSTER) names, or ``None`` without it."""
    if not settings.redis_url:
        return None
    try:
        return parse_redis_url(settings.redis_url, cluster=settings.redis_cluster)
    except ValueError as exc:
        raise SettingsError(f"REDIS_URL: {exc}", param="REDIS_URL") from None


def store_kind(settings: Settings) -> str:
    """Where shared state lives: ``memory`` (this process, and SQLite under DATA_DIR) without REDIS_URL;
    else ``redis`` (one server), ``redis-cluster`` or ``redis-sentinel``."""
    target = redis_target(settings)
    return "memory" if target is None else target.kind


def exact_levels(settings: Settings) -> tuple[str, ...]:
    """The exact tier's levels, first first: Redis (with the local copy of what was read from it in front,
    unless REDIS_CLIENT_CACHE_BYTES=0), or the in-process LRU in front of the disk (unless
    CACHE_DISK_MAX_BYTES=0)."""
    if settings.redis_url:
        kind = store_kind(settings)  # redis, redis-cluster or redis-sentinel
        return (TRACKED, kind) if settings.redis_client_cache_bytes > 0 else (kind,)
    return ("memory", "disk") if settings.cache_disk_max_bytes > 0 else ("memory",)


def history_kind(settings: Settings) -> str:
    """Where the usage history and the probe's history live: ``postgres`` (DATABASE_URL, shared by replicas) or
    ``sqlite`` (files under DATA_DIR)."""
    return "postgres" if settings.database_url else "sqlite"


def ledger_kind(settings: Settings) -> str:
    """Where the savings ledger lives: Redis when there is one (of whichever kind), else the monitoring database
    (``sqlite`` or ``postgres``)."""
    return store_kind(settings) if settings.redis_url else history_kind(settings)


def semantic_store_kind(settings: Settings) -> str:
    return "qdrant" if settings.qdrant_url else "qdrant-edge"


def embedder_kind(settings: Settings) -> str:
    return "http" if settings.embedding_url else "in-process"


def _home(redis: RedisHome | None) -> RedisHome:
    if redis is None:
        raise RuntimeError("a Redis backend was chosen without a Redis home")
    return redis


# -- the Redis home, one kind per way of reaching Redis: (settings, target) ----------------------------------

REDIS_HOMES: dict[str, type[RedisHome]] = {"redis": RedisHome, "redis-cluster": ClusterHome,
                                           "redis-sentinel": SentinelHome}


def redis_home(settings: Settings) -> RedisHome | None:
    target = redis_target(settings)
    if target is None:
        return None
    return REDIS_HOMES[target.kind](target, timeout=settings.redis_timeout, cooldown=settings.redis_cooldown)


# -- exact tier, rate counters, savings ledger, feedback, leases: (settings, the Redis home if any) ---------
# Every kind of Redis serves them the same way: the home hides what differs.

EXACT_BACKENDS: dict[str, Callable[[Settings, RedisHome | None], ExactBackend]] = {
    "memory": lambda settings, _: MemoryBackend(settings.cache_max_bytes),
    "disk": lambda settings, _: DiskBackend(settings.data_path / DISK_FILENAME, settings.cache_disk_max_bytes,
                                            policy=settings.cache_disk_eviction),
    **{kind: (lambda _, redis: RedisBackend(_home(redis))) for kind in REDIS_KINDS},
    TRACKED: lambda settings, redis: TrackedCopy(
        MemoryBackend(settings.redis_client_cache_bytes),
        _home(redis).tracking(f"{settings.cache_key_prefix}exact:")),
}

RATE_COUNTERS: dict[str, Callable[[RedisHome | None], Counter]] = {
    "memory": lambda _: MemoryCounter(),
    **{kind: (lambda redis: RedisCounter(_home(redis))) for kind in REDIS_KINDS},
}

LEDGER_STORES: dict[str, Callable[[Settings, RedisHome | None, SqlDatabase], LedgerStore]] = {
    "sqlite": lambda _, __, database: SqlLedgerStore(database),
    "postgres": lambda _, __, database: SqlLedgerStore(database),
    **{kind: (lambda settings, redis, _: RedisLedgerStore(_home(redis), prefix=settings.cache_key_prefix))
       for kind in REDIS_KINDS},
}

FEEDBACK_STORES: dict[str, Callable[[Settings, RedisHome | None], FeedbackStore]] = {
    "memory": lambda _, __: MemoryFeedbackStore(),
    **{kind: (lambda settings, redis: RedisFeedbackStore(_home(redis), prefix=settings.cache_key_prefix))
       for kind in REDIS_KINDS},
}

LOCKS: dict[str, Callable[[RedisHome | None], Locks]] = {
    "memory": lambda _: MemoryLocks(),
    **{kind: (lambda redis: RedisLocks(_home(redis))) for kind in REDIS_KINDS},
}


# -- history databases (usage rows, the probe's history): (settings, the owner's schema) ---------------------


def _postgres(settings: Settings, schema: Schema) -> SqlDatabase:
    from proxy.platform.postgres import PostgresDatabase

    return PostgresDatabase(settings.database_url or "", owner=schema.name, migrations=schema.migrations,
                            timeout=settings.database_timeout)


HISTORY_DATABASES: dict[str, Callable[[Settings, Schema], SqlDatabase]] = {
    "sqlite": lambda settings, schema: Database(settings.data_path / schema.filename, schema.migrations),
    "postgres": _postgres,
}


# -- semantic tier: (settings) ---------------------------------------------------------------------------


def _qdrant(settings: Settings) -> SemanticBackend:
    from proxy.semantic.qdrant import QdrantBackend

    return QdrantBackend(settings.qdrant_url, api_key=settings.qdrant_api_key, collection=settings.qdrant_collection,
                         timeout=settings.qdrant_timeout, replication_factor=settings.qdrant_replication_factor)


def _edge(settings: Settings) -> SemanticBackend:
    from proxy.semantic.edge import EdgeBackend

    return EdgeBackend(settings.data_path / "semantic" / settings.qdrant_collection, timeout=settings.qdrant_timeout)


def _http_embedder(settings: Settings) -> Embedder:
    from embedding_service.client import HttpEmbedder

    return HttpEmbedder(settings.embedding_url or "", timeout=settings.embedding_timeout)


def _local_embedder(settings: Settings) -> Embedder:
    from embedding_service.local import LocalEmbedder
    from proxy.semantic.encoders import LOCAL_BATCH_WINDOW_MS, shared_encoder

    return LocalEmbedder(shared_encoder(onnx_int8=settings.embedding_onnx_int8), window_ms=LOCAL_BATCH_WINDOW_MS)


def _onnx_verifier(settings: Settings) -> Verifier:
    return OnnxVerifier(threads=1)  # one thread: a verification is one short pair, the loop runs beside it


#: SEMANTIC_VERIFIER: the cross-encoder on ONNX Runtime, or none (the guards alone decide)
VERIFIERS: dict[str, Callable[[Settings], Verifier | None]] = {"on": _onnx_verifier, "off": lambda _: None}

SEMANTIC_STORES: dict[str, Callable[[Settings], SemanticBackend]] = {"qdrant": _qdrant, "qdrant-edge": _edge}
EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {"http": _http_embedder, "in-process": _local_embedder}
