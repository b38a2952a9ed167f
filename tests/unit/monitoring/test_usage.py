"""Usage history: batched rows, queries by time, model and bucket, retention, a retried batch applied once; every
test of the ``store`` runs on SQLite and on PostgreSQL (the ``sql_engine`` fixture) and expects the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from proxy.monitoring.schema import SCHEMA
from proxy.monitoring.usage import COLUMNS, UsageStore
from proxy.platform.sql import Schema, SqlDatabase
from proxy.platform.sqlite_child import MAX_VALUES

DAY = 86400
T0 = datetime(2026, 2, 21, 10, 0, tzinfo=UTC).timestamp()


def row(ts: float, model: str | None = "gpt-4o-mini", outcome: str = "miss", prompt: int = 10, completion: int = 5,
        cached: int = 0, status: int = 200, cost: float = 0.001, saved: float = 0.0) -> tuple[object, ...]:
    return (ts, "req", "/v1/chat/completions", model, prompt, completion, cached, outcome,
            "exact" if outcome == "exact_hit" else None, status, 12.5, 0, "ab" * 32, cost, saved)


@pytest.fixture
async def store(make_database: Callable[[Schema], SqlDatabase]) -> AsyncIterator[UsageStore]:
    db = make_database(SCHEMA)
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
    count = 2 * (MAX_VALUES // len(COLUMNS)) + 7  # on SQLite two full multi-row statements and a partial one
    for i in range(count):
        store.append(row(T0 + i, outcome="exact_hit" if i % 3 else "miss"))
    assert store.pending == count
    result = await store.query(start=T0, end=T0 + DAY, model=None, bucket="day")
    assert (result["totals"]["requests"], result["totals"]["misses"]) == (count, (count + 2) // 3)
    assert store.pending == 0 and store.written == count


async def test_whole_hours_come_from_the_sums_and_the_ends_from_the_rows(store: UsageStore) -> None:
    # rows across five hours; ranges that start and end inside hours, on hour boundaries, and inside one hour
    rows = [row(T0 + minute * 60 + 13, model="a" if minute % 2 else "b",
                outcome=("miss", "exact_hit", "semantic_hit", "bypass")[minute % 4],
                status=502 if minute % 5 == 0 else 200, cost=0.001 * (minute % 3)) for minute in range(0, 300, 7)]
    for one in rows:
        store.append(one)
    await store.flush()
    assert (await store.query(start=0, end=T0 + DAY, model=None, bucket="hour"))["totals"]["requests"] == 43
    for start, end in ((T0 + 1000, T0 + 4 * 3600 + 1000), (T0, T0 + 3 * 3600), (T0 + 100, T0 + 2000),
                       (T0 + 3600 + 1, T0 + 7200 - 1), (T0 - 3600, T0 + 6 * 3600)):
        for model in (None, "a"):
            expected = [r for r in rows if start <= r[0] < end and model in (None, r[3])]  # type: ignore[operator]
            result = await store.query(start=start, end=end, model=model, bucket="hour")
            totals = result["totals"]
            assert totals["requests"] == len(expected), (start, end, model)
            assert totals["misses"] == sum(r[7] == "miss" for r in expected)
            assert totals["errors"] == sum(r[9] >= 500 for r in expected)  # type: ignore[operator]
            assert totals["cost_spent_usd"] == pytest.approx(sum(r[13] for r in expected))  # type: ignore[misc]
            assert sum(point["requests"] for point in result["timeseries"]) == len(expected)


async def test_rows_without_a_model_have_their_own_line(store: UsageStore) -> None:
    store.append(row(T0 + 10, model=None))
    store.append(row(T0 + 20))
    store.append(row(T0 + 3600 + 20, model=None))
    result = await store.query(start=T0 - 1, end=T0 + 2 * 3600 + 1, model=None, bucket="day")
    assert [(m["model"], m["requests"]) for m in result["by_model"]] == [(None, 2), ("gpt-4o-mini", 1)]


async def test_each_batch_adds_its_hourly_sums(store: UsageStore) -> None:
    store.append(row(T0 + 5))
    store.append(row(T0 + 6, outcome="exact_hit", cost=0.0, saved=0.002, status=503))
    store.append(row(T0 + 3601, model=None))
    await store.flush()
    store.append(row(T0 + 7, cached=3))  # a later batch adds to the same hour
    await store.flush()
    assert await store.db.fetch("SELECT * FROM usage_hourly ORDER BY hour, model") == [
        (int(T0), "gpt-4o-mini", 3, 1, 0, 2, 0, 1, 20, 10, 3, 15, 30, 0.002, 0.002, 37.5),
        (int(T0) + 3600, "", 1, 0, 0, 1, 0, 0, 10, 5, 0, 0, 15, 0.001, 0.0, 12.5)]
    assert await store.db.fetch("SELECT COUNT(*) FROM usage") == [(4,)]


async def test_a_failed_write_keeps_its_rows_and_counts_only_what_overflows(
        store: UsageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import proxy.monitoring.usage as usage_module

    monkeypatch.setattr(usage_module, "MAX_BUFFER", 3)
    drops: list[int] = []
    store._on_drop = drops.append
    store.append(row(T0))
    store.append(row(T0 + 1))
    real = store.db

    class Down:
        dialect = real.dialect

        async def insert_rows(self, *args: object, **kwargs: object) -> None:
            store.append(row(T0 + 2))  # arrives while the write is under way
            store.append(row(T0 + 3))
            raise ConnectionRefusedError("the database is down")

    store.db = Down()  # type: ignore[assignment]
    await store.flush()
    assert (store.pending, store.dropped, drops, store.failures) == (3, 1, [1], 1)
    assert "ConnectionRefusedError" in (store.last_error or "")
    store.db = real
    await store.flush()
    assert (store.pending, store.written, store.last_error) == (0, 3, None)
    result = await store.query(start=T0, end=T0 + 10, model=None, bucket="hour")
    assert result["totals"]["requests"] == 3  # the oldest rows were kept; the newest did not fit


async def test_the_hourly_sums_are_filled_in_from_rows_written_before_them(
        make_database: Callable[[Schema], SqlDatabase]) -> None:
    # a database of versions 1 and 2 (rows, no sums) is upgraded: version 3 adds up what is there
    old = make_database(Schema(SCHEMA.name, SCHEMA.filename, SCHEMA.migrations[:2]))
    await old.open()
    await old.insert_rows("usage", COLUMNS, [*row(T0 + 10), *row(T0 + 20, outcome="exact_hit", saved=0.5),
                                             *row(T0 + 3600 * 5, model=None, status=500)])
    await old.close()
    db = make_database(SCHEMA)
    await db.open()
    store = UsageStore(db, retention_days=30)
    result = await store.query(start=T0 - 3600, end=T0 + DAY, model=None, bucket="hour")
    assert (await db.fetch("SELECT COUNT(*) FROM usage_hourly")) == [(2,)]
    totals = result["totals"]
    assert (totals["requests"], totals["exact_hits"], totals["errors"], totals["tokens_saved"]) == (3, 1, 1, 15)
    assert totals["cost_saved_usd"] == 0.5
    assert [(m["model"], m["requests"]) for m in result["by_model"]] == [("gpt-4o-mini", 2), (None, 1)]
    await db.close()


async def test_retention_runs_on_one_replica_at_a_time(store: UsageStore, sql_engine: str,
                                                        request: pytest.FixtureRequest) -> None:
    if sql_engine != "postgres":
        pytest.skip("one SQLite file has one writer at a time already")
    import asyncpg

    database_url = request.getfixturevalue("database_url")  # the store's own database
    from proxy.platform.postgres import job_key

    now = T0 + 100 * DAY
    store.append(row(now - 31 * DAY))
    await store.flush()
    other = await asyncpg.connect(database_url)
    async with other.transaction():  # another replica is purging just now
        await other.execute("SELECT pg_advisory_xact_lock($1)", job_key("cachegate_monitoring", "usage-retention"))
        assert await store.purge(now) == 0
    await other.close()
    assert await store.purge(now) == 1


class AnswerLost:
    """The store's database, but the answer to the next write is lost after it committed (what a DATABASE_TIMEOUT
    firing after the COMMIT was sent, or a connection cut then, tells the store): the write is applied, the store
    is told it failed. Rows arrive meanwhile, as they do while a write is under way."""

    def __init__(self, store: UsageStore, arriving: list[tuple[object, ...]]) -> None:
        self.real = store.db
        self.dialect = self.real.dialect
        self.store = store
        self.arriving = arriving

    async def insert_rows(self, *args: Any, **kwargs: Any) -> bool:
        await self.real.insert_rows(*args, **kwargs)
        for one in self.arriving:
            self.store.append(one)
        raise TimeoutError("the database did not answer in time")


async def test_a_batch_tried_again_after_its_answer_was_lost_is_counted_once(store: UsageStore) -> None:
    store.append(row(T0 + 5))
    store.append(row(T0 + 6, outcome="exact_hit", cost=0.0, saved=0.002))
    real = store.db
    store.db = AnswerLost(store, [row(T0 + 7, cached=3)])  # type: ignore[assignment]
    await store.flush()
    assert (store.pending, store.failures, store.written) == (3, 1, 0)  # the store cannot know it was written
    store.db = real
    await store.flush()  # the two rows again, under their batch's id, then the one that arrived meanwhile
    assert await store.db.fetch("SELECT COUNT(*) FROM usage") == [(3,)]  # before: 5, the two rows twice
    assert (store.pending, store.written, store.repeats_skipped, store.last_error) == (0, 3, 1, None)
    assert await store.db.fetch("SELECT * FROM usage_hourly") == [
        (int(T0), "gpt-4o-mini", 3, 1, 0, 2, 0, 0, 20, 10, 3, 15, 30, 0.002, 0.002, 37.5)]
    totals = (await store.query(start=T0, end=T0 + 3600, model=None, bucket="hour"))["totals"]
    assert (totals["requests"], totals["exact_hits"], totals["tokens_saved"]) == (3, 1, 15)
    assert await store.db.fetch("SELECT COUNT(*) FROM usage_batches") == [(2,)]  # one id per batch


async def test_batches_kept_apart_stay_in_order_and_within_the_bound(
        store: UsageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import proxy.monitoring.usage as usage_module

    monkeypatch.setattr(usage_module, "MAX_BUFFER", 4)
    drops: list[int] = []
    store._on_drop = drops.append
    store.append(row(T0 + 1))
    store.append(row(T0 + 2))
    real = store.db
    store.db = AnswerLost(store, [row(T0 + 3), row(T0 + 4), row(T0 + 5)])  # type: ignore[assignment]
    await store.flush()  # two rows kept under their id; of the three that arrived, two fit
    assert (store.pending, store.dropped, drops) == (4, 1, [1])
    store.append(row(T0 + 6))  # the bound counts the kept batch too
    assert (store.pending, store.dropped) == (4, 2)
    store.db = real
    await store.flush()
    assert await store.db.fetch("SELECT ts FROM usage ORDER BY ts") == [(T0 + 1,), (T0 + 2,), (T0 + 3,), (T0 + 4,)]
    assert await store.db.fetch("SELECT requests FROM usage_hourly") == [(4,)]
    assert (store.pending, store.written, store.repeats_skipped) == (0, 4, 1)


async def test_batch_ids_are_kept_a_day(store: UsageStore) -> None:
    import time

    from proxy.monitoring.usage import BATCH_IDS_KEPT

    store.append(row(T0))
    await store.flush()
    written = time.time()
    await store.purge(written + BATCH_IDS_KEPT - 60)
    assert await store.db.fetch("SELECT COUNT(*) FROM usage_batches") == [(1,)]
    await store.purge(written + BATCH_IDS_KEPT + 60)
    assert await store.db.fetch("SELECT COUNT(*) FROM usage_batches") == [(0,)]


async def test_a_commit_whose_answer_is_lost_on_the_wire_is_counted_once(database_url: str) -> None:
    """The real case on PostgreSQL: a proxy between the store and the server forwards the COMMIT, lets the server
    answer it in full, then cuts the connection instead of passing the answer on."""
    from urllib.parse import urlsplit

    from proxy.platform.postgres import PostgresDatabase
    from tests.support.pg_proxy import LostAnswerProxy

    parts = urlsplit(database_url)
    assert parts.hostname is not None and parts.port is not None
    async with LostAnswerProxy(parts.hostname, parts.port) as wire:
        db = PostgresDatabase(wire.url(parts.path.lstrip("/")), owner=SCHEMA.name, migrations=SCHEMA.migrations)
        await db.open()  # migrated (their COMMITs answered) before the fault is armed
        store = UsageStore(db, retention_days=30)
        try:
            store.append(row(T0 + 5))
            store.append(row(T0 + 6, outcome="exact_hit", cost=0.0, saved=0.002))
            wire.lose_next_commit()
            await store.flush()
            assert (wire.lost, store.failures, store.pending, store.written) == (1, 1, 2, 0)
            assert await db.fetch("SELECT COUNT(*) FROM usage") == [(2,)]  # applied all the same
            await store.flush()  # a new connection; the batch again
            assert await db.fetch("SELECT COUNT(*) FROM usage") == [(2,)]  # before: 4
            assert await db.fetch("SELECT requests, exact_hits, tokens_saved FROM usage_hourly") == [(2, 1, 15)]
            assert (store.pending, store.written, store.repeats_skipped) == (0, 2, 1)
        finally:
            await db.close()


async def test_two_flushes_failing_at_once_keep_the_older_batch_first(
        store: UsageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's flush and a reader's run at once and both fail, the older batch's first: within the bound the
    older rows are kept, whichever failure came last."""
    import asyncio

    import proxy.monitoring.usage as usage_module

    monkeypatch.setattr(usage_module, "MAX_BUFFER", 1)
    real = store.db
    entered: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
    answer: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]

    class Slow:
        dialect = real.dialect
        calls = 0

        async def insert_rows(self, *args: Any, **kwargs: Any) -> bool:
            call, Slow.calls = Slow.calls, Slow.calls + 1
            entered[call].set()
            await answer[call].wait()
            raise TimeoutError("the database did not answer in time")

    store.db = Slow()  # type: ignore[assignment]
    store.append(row(T0 + 1))
    older = asyncio.ensure_future(store.flush())
    await entered[0].wait()
    store.append(row(T0 + 2))
    newer = asyncio.ensure_future(store.flush())
    await entered[1].wait()
    answer[0].set()
    await older
    answer[1].set()
    await newer
    assert (store.pending, store.dropped, store.failures) == (1, 1, 2)
    store.db = real
    await store.flush()
    assert await store.db.fetch("SELECT ts FROM usage") == [(T0 + 1,)]
