"""The embedded semantic store (no QDRANT_URL): Qdrant's own engine in-process via ``qdrant-edge-py``.

One persistent shard under ``DATA_DIR/semantic/<collection>``: HNSW-indexed vectors with a keyword index
on ``scope`` and a float index on ``expires_at``, written through a write-ahead log. qdrant-edge's API is
synchronous, so every call runs on this store's worker threads, never on the event loop; the HNSW
optimiser (seconds per few thousand points, on one core) runs on a thread of its own so searches never
wait behind it. Feedback blocks are kept in ``<collection>.blocks`` beside the shard, one key per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from proxy.contracts import SemanticMatch, SemanticRecord
from proxy.errors import BackendError

logger = logging.getLogger("cachegate.semantic.edge")

COMPONENT = "qdrant"
T = TypeVar("T")

#: HNSW settings: m=16 / ef_construct=64 keep recall ~1 at our scale and build on one thread; segments
#: below ``FULL_SCAN_THRESHOLD`` KB are searched exactly, which is faster than a graph at that size.
HNSW_M, HNSW_EF_CONSTRUCT, FULL_SCAN_THRESHOLD_KB, INDEXING_THREADS = 16, 64, 10_000, 1
#: Unindexed points are searched by brute force; an appendable segment above this many KB gets indexed by
#: the next :meth:`EdgeBackend.maintain` (~3,000 384-d vectors: a few ms of brute force at most).
INDEXING_THRESHOLD_KB = 4_000
#: Writes after which indexing starts at once instead of at the tier's next upkeep (a burst of misses).
INDEX_AFTER_WRITES = 5_000


class EdgeBackend:
    """:class:`proxy.contracts.SemanticBackend` on a local qdrant-edge shard."""

    name = "qdrant-edge"
    remote = False

    def __init__(self, path: Path, *, timeout: float = 1.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._shard: Any = None
        self._dim: int | None = None
        # Two workers: a slow upsert batch never queues a search behind it. The optimiser has its own.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qdrant-edge")
        self._optimizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge-optimize")
        self._optimizing: asyncio.Future[Any] | None = None
        self._writes_since_optimize = 0
        self._index_soon = False
        self._blocks_lock = threading.Lock()

    @property
    def blocks_path(self) -> Path:
        return self.path.with_name(self.path.name + ".blocks")

    @property
    def location(self) -> str:
        return str(self.path)

    # -- lifecycle --------------------------------------------------------------------------------

    async def ensure_ready(self, dim: int) -> None:
        if self._shard is not None:
            return
        self._shard = await self._run(self._open, dim, timeout=60.0)
        self._dim = dim

    def _open(self, dim: int) -> Any:
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT,
                                           full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
                                           max_indexing_threads=INDEXING_THREADS),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
        )
        self.path.mkdir(parents=True, exist_ok=True)
        fresh = not any(self.path.iterdir())
        try:
            shard = qe.EdgeShard.create(str(self.path), config) if fresh else qe.EdgeShard.load(str(self.path), config)
        except Exception as exc:
            action = "create" if fresh else "open"
            raise BackendError(COMPONENT, f"cannot {action} the embedded store at {self.path} for {dim}-d vectors "
                                          f"(delete the directory if it was made for another model): {exc}") from exc
        for field, schema in (("scope", qe.PayloadSchemaType.Keyword), ("model", qe.PayloadSchemaType.Keyword),
                              ("namespace", qe.PayloadSchemaType.Keyword),
                              ("expires_at", qe.PayloadSchemaType.Float)):
            shard.update(qe.UpdateOperation.create_field_index(field, schema))  # idempotent
        return shard

    async def aclose(self) -> None:
        shard, self._shard = self._shard, None
        if self._optimizing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._optimizing), 30)
        if shard is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                await loop.run_in_executor(self._executor, _flush_and_close, shard)
        self._executor.shutdown(wait=False)
        self._optimizer.shutdown(wait=False)

    async def ping(self) -> None:
        if self._shard is None:
            raise BackendError(COMPONENT, f"the embedded store at {self.path} is not open")

    # -- reads and writes -------------------------------------------------------------------------

    async def search(self, vector: Sequence[float], scope: str, *, limit: int, now: float) -> list[SemanticMatch]:
        shard = self._require()
        request = qe.SearchRequest(query=qe.Query.Nearest(list(vector)), limit=limit,
                                   filter=_filter(scope=scope, alive_at=now), with_payload=True)
        points = await self._run(shard.search, request)
        return [SemanticMatch(id=str(p.id), score=float(p.score), payload=p.payload or {}) for p in points]

    async def upsert(self, record: SemanticRecord) -> None:
        shard = self._require()
        payload = {**record.payload, "scope": record.scope, "expires_at": record.expires_at}
        point = qe.Point(record.id, list(record.vector), payload)
        await self._run(shard.update, qe.UpdateOperation.upsert_points([point]))
        self._wrote(1)

    async def upsert_many(self, records: Sequence[SemanticRecord]) -> None:
        """One write for many records (bulk loads: the benchmark, imports)."""
        shard = self._require()
        points = [qe.Point(r.id, list(r.vector), {**r.payload, "scope": r.scope, "expires_at": r.expires_at})
                  for r in records]
        await self._run(shard.update, qe.UpdateOperation.upsert_points(points), timeout=max(self.timeout, 60.0))
        self._wrote(len(points), index=False)

    def _wrote(self, count: int, *, index: bool = True) -> None:
        self._writes_since_optimize += count
        self._index_soon = index and self._writes_since_optimize >= INDEX_AFTER_WRITES

    @property
    def needs_upkeep(self) -> bool:
        """A burst of writes is waiting to be indexed: the tier runs :meth:`maintain` now, not at its next
        upkeep (brute force over many unindexed points would slow every search meanwhile)."""
        return self._index_soon and self._optimizing is None

    async def delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        shard = self._require()

        def delete() -> int:
            present = shard.retrieve(list(ids), with_payload=False, with_vector=False)
            if present:
                shard.update(qe.UpdateOperation.delete_points([r.id for r in present]))
            return len(present)

        return await self._run(delete)

    async def delete_where(self, *, model: str | None = None, namespace: str | None = None,
                           expired_before: float | None = None) -> int:
        shard = self._require()
        condition = _filter(model=model, namespace=namespace, expired_before=expired_before)

        def delete() -> int:
            count = int(shard.count(qe.CountRequest(exact=True, filter=condition)))
            if count:
                operation = (qe.UpdateOperation.delete_points_by_filter(condition) if condition is not None
                             else qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[])))
                shard.update(operation)
            return count

        return await self._run(delete)

    async def count(self) -> int:
        shard = self._require()
        return int(await self._run(shard.count, qe.CountRequest(exact=True)))

    # -- feedback blocks --------------------------------------------------------------------------

    async def add_block(self, key: str) -> None:
        def append() -> None:
            with self._blocks_lock:
                self.blocks_path.parent.mkdir(parents=True, exist_ok=True)
                with self.blocks_path.open("a", encoding="ascii") as out:
                    out.write(key + "\n")

        await self._run(append)

    async def load_blocks(self) -> set[str]:
        def load() -> set[str]:
            with self._blocks_lock:
                if not self.blocks_path.exists():
                    return set()
                return {line.strip() for line in self.blocks_path.read_text("ascii").splitlines() if line.strip()}

        return await self._run(load)

    # -- upkeep -----------------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Index what was written since the last call (HNSW build on the optimiser thread) and flush."""
        shard = self._shard
        if shard is None or self._writes_since_optimize == 0 or self._optimizing is not None:
            return
        self._writes_since_optimize = 0
        self._index_soon = False
        loop = asyncio.get_running_loop()
        self._optimizing = loop.run_in_executor(self._optimizer, _optimize, shard)
        try:
            await self._optimizing
        except Exception as exc:
            raise BackendError(COMPONENT, f"optimising the embedded store failed: {exc}") from exc
        finally:
            self._optimizing = None

    async def index_status(self) -> tuple[int, int]:
        """(points, indexed vectors) — for the benchmark and the admin view."""
        shard = self._require()
        info = await self._run(shard.info)
        return int(info.points_count), int(info.indexed_vectors_count)

    # -- plumbing ---------------------------------------------------------------------------------

    def _require(self) -> Any:
        if self._shard is None:
            raise BackendError(COMPONENT, f"the embedded store at {self.path} is not open")
        return self._shard

    async def _run(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout or self.timeout):
                return await loop.run_in_executor(self._executor, fn, *args)
        except BackendError:
            raise
        except TimeoutError as exc:
            raise BackendError(COMPONENT, f"the embedded store took longer than {timeout or self.timeout}s") from exc
        except Exception as exc:
            raise BackendError(COMPONENT, f"embedded store call failed: {exc!r}") from exc


def _optimize(shard: Any) -> None:
    shard.optimize()
    shard.flush()


def _flush_and_close(shard: Any) -> None:
    shard.flush()
    shard.close()


def _filter(*, scope: str | None = None, alive_at: float | None = None, model: str | None = None,
            namespace: str | None = None, expired_before: float | None = None) -> Any:
    must: list[Any] = []
    if scope is not None:
        must.append(qe.FieldCondition("scope", match=qe.MatchValue(scope)))
    if alive_at is not None:
        must.append(qe.FieldCondition("expires_at", range=qe.RangeFloat(gt=alive_at)))
    if model is not None:
        must.append(qe.FieldCondition("model", match=qe.MatchValue(model)))
    if namespace is not None:
        must.append(qe.FieldCondition("namespace", match=qe.MatchValue(namespace)))
    if expired_before is not None:
        must.append(qe.FieldCondition("expires_at", range=qe.RangeFloat(lte=expired_before)))
    return qe.Filter(must=must) if must else None


def point_uuid(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))
