"""The store contract, run against both backends: what the tier relies on behaves the same on each."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from proxy.contracts import SemanticBackend, SemanticRecord
from proxy.errors import BackendError
from proxy.semantic.edge import EdgeBackend

from .conftest import DIM, make_store

NOW = 1_000_000.0


def record(vector: list[float], *, scope: str = "s1", expires_at: float = NOW + 100, model: str = "m",
           namespace: str = "-", text: str = "hello") -> SemanticRecord:
    return SemanticRecord(id=str(uuid.uuid4()), vector=vector, scope=scope, expires_at=expires_at,
                          payload={"model": model, "namespace": namespace, "text": text})


async def test_ensure_ready_is_idempotent(store: SemanticBackend) -> None:
    await store.ensure_ready(DIM)
    await store.ensure_ready(DIM)
    assert await store.count() == 0


async def test_search_is_best_first_within_one_scope(store: SemanticBackend) -> None:
    near, far, other = record([1, 0, 0, 0], text="near"), record([1, 1, 0, 0], text="far"), \
        record([1, 0, 0, 0], scope="s2", text="other scope")
    for r in (near, far, other):
        await store.upsert(r)
    matches = await store.search([1, 0.01, 0, 0], "s1", limit=5, now=NOW)
    assert [m.id for m in matches] == [near.id, far.id]
    assert matches[0].score == pytest.approx(1.0, abs=1e-3)
    assert matches[1].score == pytest.approx(0.7142, abs=1e-2)
    assert matches[0].payload["text"] == "near"
    assert matches[0].payload["scope"] == "s1"


async def test_expired_records_are_never_returned(store: SemanticBackend) -> None:
    await store.upsert(record([1, 0, 0, 0], expires_at=NOW - 1))
    await store.upsert(record([1, 0, 0, 0], expires_at=NOW))
    assert await store.search([1, 0, 0, 0], "s1", limit=5, now=NOW) == []


async def test_upsert_with_the_same_id_replaces(store: SemanticBackend) -> None:
    first = record([1, 0, 0, 0], text="old")
    await store.upsert(first)
    await store.upsert(SemanticRecord(first.id, [1, 0, 0, 0], "s1", {"text": "new"}, NOW + 100))
    matches = await store.search([1, 0, 0, 0], "s1", limit=5, now=NOW)
    assert [m.payload["text"] for m in matches] == ["new"]
    assert await store.count() == 1


async def test_delete_counts_what_existed(store: SemanticBackend) -> None:
    kept, gone = record([1, 0, 0, 0]), record([0, 1, 0, 0])
    await store.upsert(kept)
    await store.upsert(gone)
    assert await store.delete([gone.id, str(uuid.uuid4())]) == 1
    assert await store.delete([]) == 0
    assert await store.count() == 1


async def test_delete_where_narrows_by_model_namespace_and_expiry(store: SemanticBackend) -> None:
    await store.upsert(record([1, 0, 0, 0], model="a", namespace="x"))
    await store.upsert(record([1, 0, 0, 0], model="a", namespace="y"))
    await store.upsert(record([1, 0, 0, 0], model="b", namespace="x"))
    await store.upsert(record([1, 0, 0, 0], model="b", namespace="y", expires_at=NOW - 5))
    assert await store.delete_where(expired_before=NOW) == 1
    assert await store.delete_where(model="a", namespace="x") == 1
    assert await store.delete_where(namespace="y") == 1
    assert await store.count() == 1
    assert await store.delete_where() == 1
    assert await store.count() == 0


async def test_blocks_are_durable(store_kind: str, tmp_path: Path) -> None:
    first = make_store(store_kind, tmp_path)
    await first.ensure_ready(DIM)
    await first.add_block("k1")
    await first.add_block("k2")
    await first.add_block("k1")
    assert await first.load_blocks() == {"k1", "k2"}
    await first.maintain()
    await first.aclose()


async def test_a_collection_of_another_dimension_is_a_clear_error(store_kind: str, tmp_path: Path) -> None:
    if store_kind == "edge":
        first = make_store("edge", tmp_path)
        await first.ensure_ready(DIM)
        await first.upsert(record([1, 0, 0, 0]))
        await first.aclose()
        second = make_store("edge", tmp_path)
    else:
        second = make_store("qdrant", tmp_path)
        await second.ensure_ready(DIM)
        second = type(second)(client=second.client, collection="cachegate")  # type: ignore[call-arg]
    with pytest.raises(BackendError, match=r"(?i)8-d|another model|holds"):
        await second.ensure_ready(8)
    await second.aclose()


async def test_the_embedded_store_survives_a_restart_and_indexes_on_maintain(tmp_path: Path) -> None:
    first = EdgeBackend(tmp_path / "shard", timeout=5.0)
    await first.ensure_ready(DIM)
    kept = record([0, 0, 1, 0], text="kept")
    await first.upsert(kept)
    await first.add_block("blocked")
    await first.maintain()
    await first.aclose()
    second = EdgeBackend(tmp_path / "shard", timeout=5.0)
    await second.ensure_ready(DIM)
    assert [m.id for m in await second.search([0, 0, 1, 0], "s1", limit=1, now=NOW)] == [kept.id]
    assert await second.load_blocks() == {"blocked"}
    points, _indexed = await second.index_status()
    assert points == 1
    await second.aclose()


async def test_a_closed_store_fails_as_a_backend_error(store: SemanticBackend) -> None:
    await store.aclose()
    with pytest.raises(BackendError):
        await store.search([1, 0, 0, 0], "s1", limit=1, now=NOW)


async def test_a_burst_of_writes_asks_for_upkeep_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from proxy.semantic import edge

    monkeypatch.setattr(edge, "INDEX_AFTER_WRITES", 3)
    backend = EdgeBackend(tmp_path / "shard", timeout=5.0)
    await backend.ensure_ready(DIM)
    for i in range(2):
        await backend.upsert(record([1, i, 0, 0]))
    assert not backend.needs_upkeep
    await backend.upsert(record([1, 2, 0, 0]))
    assert backend.needs_upkeep
    await backend.maintain()
    assert not backend.needs_upkeep and backend._writes_since_optimize == 0
    await backend.aclose()
