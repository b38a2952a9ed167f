"""The Qdrant server store (QDRANT_URL set), through ``qdrant-client``'s async client.

Every call is bounded by QDRANT_TIMEOUT and every failure becomes :class:`BackendError` so the tier fails
open. Feedback blocks live in a second collection, ``<collection>_feedback``, so that every proxy sharing
the server shares them. The client can be injected (tests pass ``AsyncQdrantClient(location=":memory:")``,
qdrant-client's local mode, which speaks the same API without a server).
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from qdrant_client import AsyncQdrantClient, models

from proxy.contracts import SemanticMatch, SemanticRecord
from proxy.errors import BackendError

COMPONENT = "qdrant"
T = TypeVar("T")

_INDEXES = (("scope", models.PayloadSchemaType.KEYWORD), ("model", models.PayloadSchemaType.KEYWORD),
            ("namespace", models.PayloadSchemaType.KEYWORD), ("expires_at", models.PayloadSchemaType.FLOAT))


class QdrantBackend:
    """:class:`proxy.contracts.SemanticBackend` on a Qdrant server."""

    name = "qdrant"
    remote = True

    def __init__(self, url: str | None = None, *, api_key: str | None = None, collection: str = "cachegate",
                 timeout: float = 1.0, client: AsyncQdrantClient | None = None, replication_factor: int = 1) -> None:
        if client is None and url is None:
            raise ValueError("QdrantBackend needs a url or a client")
        self.url = url
        self.collection = collection
        self.feedback_collection = f"{collection}_feedback"
        self.timeout = timeout
        self.replication_factor = replication_factor  # copies of each shard on a Qdrant cluster (new collections)
        # The constructor does no I/O: the first request opens the connection (qdrant-client's version check
        # would otherwise query the server from a thread at construction; ensure_ready checks what matters).
        self.client = client if client is not None else AsyncQdrantClient(
            url=url, api_key=api_key, timeout=max(1, int(timeout + 0.999)), check_compatibility=False)

    @property
    def location(self) -> str:
        return f"{self.url or 'injected client'} collection {self.collection}"

    async def ensure_ready(self, dim: int) -> None:
        await self._ensure_collection(self.collection, dim, models.Distance.COSINE)
        await self._ensure_collection(self.feedback_collection, 1, models.Distance.DOT)
        for field, schema in _INDEXES:
            with warnings.catch_warnings():  # qdrant-client's local mode warns that indexes do nothing there
                warnings.simplefilter("ignore", UserWarning)
                await self._call(self.client.create_payload_index(self.collection, field, schema, wait=True),
                                 f"creating the payload index on {field!r}", timeout=max(self.timeout, 10.0))

    async def _ensure_collection(self, name: str, dim: int, distance: models.Distance) -> None:
        what = f"collection {name!r}"
        exists = await self._call(self.client.collection_exists(name), f"checking {what}")
        if not exists:
            try:
                async with asyncio.timeout(max(self.timeout, 10.0)):
                    await self.client.create_collection(
                        name, vectors_config=models.VectorParams(size=dim, distance=distance),
                        replication_factor=self.replication_factor)
            except Exception as exc:
                # Another proxy may have created it between our check and our create: that is fine.
                if "already exists" not in str(exc).lower():
                    raise BackendError(COMPONENT, f"cannot create {what} on {self.url}: {exc!r}") from exc
        info = await self._call(self.client.get_collection(name), f"reading {what}")
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        if size != dim:
            raise BackendError(COMPONENT, f"{what} holds {size}-d vectors but the embedding model makes {dim}-d "
                                          "ones; set QDRANT_COLLECTION to another name or drop the collection")

    async def search(self, vector: Sequence[float], scope: str, *, limit: int, now: float) -> list[SemanticMatch]:
        result = await self._call(self.client.query_points(
            self.collection, query=list(vector), query_filter=_filter(scope=scope, alive_at=now), limit=limit,
            with_payload=True), "search")
        return [SemanticMatch(id=str(p.id), score=float(p.score), payload=p.payload or {}) for p in result.points]

    async def upsert(self, record: SemanticRecord) -> None:
        payload = {**record.payload, "scope": record.scope, "expires_at": record.expires_at}
        point = models.PointStruct(id=record.id, vector=list(record.vector), payload=payload)
        await self._call(self.client.upsert(self.collection, points=[point], wait=True), "upsert")

    async def delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        present = await self._call(self.client.retrieve(self.collection, ids=list(ids), with_payload=False,
                                                        with_vectors=False), "retrieve")
        if present:
            await self._call(self.client.delete(self.collection, points_selector=models.PointIdsList(
                points=[p.id for p in present]), wait=True), "delete")
        return len(present)

    async def delete_where(self, *, model: str | None = None, namespace: str | None = None,
                           expired_before: float | None = None) -> int:
        condition = _filter(model=model, namespace=namespace, expired_before=expired_before) or models.Filter()
        counted = await self._call(self.client.count(self.collection, count_filter=condition, exact=True), "count")
        if counted.count:
            await self._call(self.client.delete(self.collection, points_selector=models.FilterSelector(
                filter=condition), wait=True), "delete")
        return int(counted.count)

    async def count(self) -> int:
        counted = await self._call(self.client.count(self.collection, exact=True), "count")
        return int(counted.count)

    async def add_block(self, key: str) -> None:
        point = models.PointStruct(id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)), vector=[1.0], payload={"key": key})
        await self._call(self.client.upsert(self.feedback_collection, points=[point], wait=True), "feedback upsert")

    async def load_blocks(self) -> set[str]:
        keys: set[str] = set()
        offset: Any = None
        while True:
            points, offset = await self._call(self.client.scroll(
                self.feedback_collection, limit=1000, offset=offset, with_payload=True, with_vectors=False),
                "feedback scroll")
            keys.update(str(p.payload["key"]) for p in points if p.payload and "key" in p.payload)
            if offset is None:
                return keys

    needs_upkeep = False  # the server indexes by itself

    async def maintain(self) -> None:
        return None  # the server indexes and vacuums by itself

    async def ping(self) -> None:
        await self._call(self.client.get_collection(self.collection), "ping")

    async def aclose(self) -> None:
        try:
            await self.client.close()
        except Exception as exc:
            raise BackendError(COMPONENT, f"closing the client failed: {exc!r}") from exc

    async def _call(self, call: Awaitable[T], what: str, *, timeout: float | None = None) -> T:
        limit = timeout or self.timeout
        try:
            async with asyncio.timeout(limit):
                return await call
        except BackendError:
            raise
        except TimeoutError as exc:
            raise BackendError(COMPONENT, f"{what} took longer than {limit}s") from exc
        except Exception as exc:
            raise BackendError(COMPONENT, f"{what} failed: {exc!r}") from exc


def _filter(*, scope: str | None = None, alive_at: float | None = None, model: str | None = None,
            namespace: str | None = None, expired_before: float | None = None) -> models.Filter | None:
    must: list[models.Condition] = []
    if scope is not None:
        must.append(models.FieldCondition(key="scope", match=models.MatchValue(value=scope)))
    if alive_at is not None:
        must.append(models.FieldCondition(key="expires_at", range=models.Range(gt=alive_at)))
    if model is not None:
        must.append(models.FieldCondition(key="model", match=models.MatchValue(value=model)))
    if namespace is not None:
        must.append(models.FieldCondition(key="namespace", match=models.MatchValue(value=namespace)))
    if expired_before is not None:
        must.append(models.FieldCondition(key="expires_at", range=models.Range(lte=expired_before)))
    return models.Filter(must=must) if must else None
