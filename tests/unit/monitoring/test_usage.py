"""Usage history: batched rows, queries by time, model and bucket, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.monitoring.schema import FILENAME, MIGRATIONS
from proxy.monitoring.usage import UsageStore
from proxy.platform.sqlite import Database

DAY = 86400
T0 = datetime(2026, 2, 21, 10, 0, tzinfo=UTC).timestamp()


def row(ts: float, model: str = "gpt-4o-mini", outcome: str = "miss", prompt: int = 10, completion: int = 5,
        cached: int = 0, status: int = 200, cost: float = 0.001, saved: float = 0.0) -> tuple[object, ...]:
    return (ts, "req", "/v1/chat/completions", model, prompt, completion, cached, outcome,
            "exact" if outcome == "exact_hit" else None, status, 12.5, 0, "ab" * 32, cost, saved)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[UsageStore]:
    db = Database(tmp_path / FILENAME, MIGRATIONS)
    await db.open()
    yield UsageStore(db, retention_days=30)
    await db.close()


async def test_totals_by_model_and_hourly_series(store: UsageStore) -> None:
    store.append(row(T0))
    store.append(row(T0 + 60, outcome="exact_hit", cost=0.0, saved=0.002))
    store.append(row(T0 + 3600, model="gpt-4o", cached=8))
    store.append(row(T0 - 10))  # before the range
    result = await store.query(start=T0, end=T0 + 2 * 3600, model=None, bucket="hour")
    totals = result["totals"]
    assert (totals["requests"], totals["exact_hits"], totals["misses"]) == (3, 1, 2)
    assert (totals["prompt_tokens"], totals["completion_tokens"], totals["cached_tokens"]) == (20, 10, 8)
    assert (totals["tokens_saved"], totals["tokens_used"]) == (15, 30)
    assert totals["cost_spent_usd"] == pytest.approx(0.002)
    assert totals["cost_saved_usd"] == pytest.approx(0.002)
    assert totals["hit_rate_percent"] == 33.33
    assert [(m["model"], m["requests"]) for m in result["by_model"]] == [("gpt-4o-mini", 2), ("gpt-4o", 1)]
    assert [(b["bucket"], b["requests"]) for b in result["timeseries"]] == [
        ("2026-02-21T10:00:00Z", 2), ("2026-02-21T11:00:00Z", 1)]
    assert result["from"] == "2026-02-21T10:00:00Z"


async def test_model_filter_and_daily_buckets(store: UsageStore) -> None:
    for day in range(3):
        store.append(row(T0 + day * DAY))
        store.append(row(T0 + day * DAY, model="gpt-4o"))
    result = await store.query(start=T0 - DAY, end=T0 + 5 * DAY, model="gpt-4o", bucket="day")
    assert result["totals"]["requests"] == 3
    assert [m["model"] for m in result["by_model"]] == ["gpt-4o"]
    assert [(b["bucket"], b["requests"]) for b in result["timeseries"]] == [
        ("2026-02-21T00:00:00Z", 1), ("2026-02-22T00:00:00Z", 1), ("2026-02-23T00:00:00Z", 1)]


async def test_empty_range(store: UsageStore) -> None:
    result = await store.query(start=T0, end=T0 + 1, model=None, bucket="hour")
    assert result["totals"]["requests"] == 0
    assert result["totals"]["cost_spent_usd"] == 0.0
    assert result["by_model"] == result["timeseries"] == []


async def test_retention_deletes_only_old_rows(store: UsageStore) -> None:
    now = T0 + 100 * DAY
    store.append(row(now - 31 * DAY))
    store.append(row(now - 30 * DAY - 1))
    store.append(row(now - 29 * DAY))
    store.append(row(now))
    await store.flush()
    assert await store.purge(now) == 2
    result = await store.query(start=0, end=now + 1, model=None, bucket="day")
    assert result["totals"]["requests"] == 2


async def test_the_buffer_is_bounded(store: UsageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import proxy.monitoring.usage as usage_module

    monkeypatch.setattr(usage_module, "MAX_BUFFER", 2)
    drops: list[int] = []
    store._on_drop = drops.append
    for _ in range(5):
        store.append(row(T0))
    assert (store.dropped, drops) == (3, [1, 1, 1])
    await store.flush()
    assert store.written == 2


async def test_large_batches_are_inserted_in_chunks(store: UsageStore) -> None:
    for i in range(1201):  # two full multi-row statements and a partial one
        store.append(row(T0 + i, outcome="exact_hit" if i % 3 else "miss"))
    assert store.pending == 1201
    result = await store.query(start=T0, end=T0 + DAY, model=None, bucket="day")
    assert (result["totals"]["requests"], result["totals"]["misses"]) == (1201, 401)
    assert store.pending == 0 and store.written == 1201
