"""The probe's history: every query of the store contract, with exact values, and retention; every test runs
on SQLite and on PostgreSQL (the ``sql_engine`` fixture) and expects the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from proxy.platform.sql import Schema, SqlDatabase, Statement
from proxy.probe import sql_store
from proxy.probe.records import CycleRow, ResultRow, VerdictRow
from proxy.probe.schema import SCHEMA
from proxy.probe.sql_store import SqlProbeStore
from proxy.probe.store import Balance, ResultFilter, Spend

DAY = 86400.0


def result(ts: float, model: str = "a", *, role: str = "repeat", prompt: int | None = 1000, cached: int | None = 500,
           status: int = 200, test: str = "basic", source: str = "cycle", diem: float | None = None,
           estimated: int = 0) -> ResultRow:
    """A stored request; with ``estimated`` one whose answer had no usage (no counts, charged the estimate)."""
    completion = None if estimated else 2
    return ResultRow(ts=ts, cycle_id="c1", run_id=f"run-{ts}", source=source, model=model, test=test, step="s",
                     role=role, stream=False, hints="", status=status, prompt_tokens=None if estimated else prompt,
                     cached_tokens=None if estimated else cached, write_tokens=None, completion_tokens=completion,
                     estimated_tokens=estimated, latency=0.5, ttft=None, error=None if status == 200 else "boom",
                     request_hash="h", upstream_request_id=None, host=None, balance_usd=None, balance_diem=diem,
                     cost_usd=0.001, saved_usd=None if estimated else 0.0004,
                     raw_usage=None if estimated else {"prompt_tokens": prompt})


def verdict(ts: float, model: str = "a", name: str = "caches", *, cache_rate: float | None = 0.5,
            error: str | None = None) -> VerdictRow:
    return VerdictRow(ts=ts, started_at=ts - 5, cycle_id="c1", run_id=f"run-{ts}", model=model, verdict=name,
                      hint=None, hit_ratio=1.0, cache_rate=cache_rate, min_prefix_tokens=1024, step_tokens=128,
                      ttl_lower=None, ttl_upper=None, speedup=2.0, contaminated=False, advertised_caching=True,
                      drift=None, tokens_spent=100, cost_usd=0.01, error=error, report={"model": model})


@pytest.fixture
async def store(make_database: Callable[[Schema], SqlDatabase]) -> AsyncIterator[SqlProbeStore]:
    store = SqlProbeStore(make_database(SCHEMA))
    await store.open()
    yield store
    await store.close()


async def test_migrations_are_applied_and_recorded(store: SqlProbeStore, sql_engine: str) -> None:
    await store.ping()
    assert store.name == sql_engine
    versions = await store.db.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(1,), (2,), (3,)]
    for table in ("results", "verdicts", "cycles", "ttl_state"):
        assert await store.db.fetch(f"SELECT COUNT(*) FROM {table}") == [(0,)]


async def test_runs_round_trip(store: SqlProbeStore) -> None:
    rows = [result(100.0, role="prime", cached=0), result(101.0), result(102.0, cached=None),
            result(103.0, estimated=1050)]
    await store.add_run(rows, verdict(110.0))
    assert await store.results(ResultFilter(), limit=10) == rows[::-1]  # newest first, every field back
    assert [v.as_dict(report=True) for v in await store.latest_verdicts()] == [verdict(110.0).as_dict(report=True)]


async def test_latest_streaks_and_recent(store: SqlProbeStore) -> None:
    for ts, model, name in ((1.0, "a", "caches"), (2.0, "a", "no_caching"), (3.0, "a", "caches"), (4.0, "a", "caches"),
                            (2.5, "b", "unknown")):
        await store.add_run([], verdict(ts, model, name, error="x" if ts == 4.0 else None))
    assert [(v.model, v.ts) for v in await store.latest_verdicts()] == [("a", 4.0), ("b", 2.5)]
    assert await store.streaks() == {"a": 3.0, "b": 2.5}  # a: caches again since 3.0
    recent = await store.recent_verdicts(2)
    assert {m: [v.ts for v in rows] for m, rows in recent.items()} == {"a": [3.0, 4.0], "b": [2.5]}
    assert await store.last_successes() == {"a": 3.0, "b": 2.5}  # 4.0 ended with an error
    assert [v.ts for v in await store.verdicts(model="a", since=2.0, until=4.0)] == [3.0, 2.0]
    assert [v.ts for v in await store.verdicts(limit=1)] == [4.0]


async def test_series_by_bucket_and_model(store: SqlProbeStore) -> None:
    await store.add_run([], verdict(10.0, "a", cache_rate=0.9))
    await store.add_run([], verdict(20.0, "a", cache_rate=0.7))
    await store.add_run([], verdict(30.0, "b", "no_caching", cache_rate=None))
    await store.add_run([], verdict(3700.0, "a", cache_rate=0.5))
    assert await store.verdict_series(since=0.0, until=7200.0, width=3600) == [
        {"bucket": 0, "model": "a", "runs": 2, "caching": 2, "cache_rate": 0.8, "hit_ratio": 1.0},
        {"bucket": 0, "model": "b", "runs": 1, "caching": 0, "cache_rate": None, "hit_ratio": 1.0},
        {"bucket": 3600, "model": "a", "runs": 1, "caching": 1, "cache_rate": 0.5, "hit_ratio": 1.0}]
    assert len(await store.verdict_series(since=0.0, until=7200.0, width=3600, model="b")) == 1


async def test_result_filters_and_the_export(store: SqlProbeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [result(float(i), "a" if i % 2 else "b", test="sizes" if i % 3 == 0 else "basic",
                   source="ttl" if i == 4 else "cycle") for i in range(1, 8)]
    await store.add_run(rows, None)
    assert [r.ts for r in await store.results(ResultFilter(model="a"), limit=10)] == [7.0, 5.0, 3.0, 1.0]
    assert [r.ts for r in await store.results(ResultFilter(test="sizes"), limit=10)] == [6.0, 3.0]
    assert [r.ts for r in await store.results(ResultFilter(source="ttl"), limit=10)] == [4.0]
    assert [r.ts for r in await store.results(ResultFilter(since=2.0, until=5.0), limit=2)] == [4.0, 3.0]
    monkeypatch.setattr(sql_store, "EXPORT_PAGE", 2)  # pages of two: every row once, oldest first
    assert [r.ts async for r in store.export(ResultFilter(since=2.0))] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


async def test_spend_usage_stats_and_balance(store: SqlProbeStore) -> None:
    await store.add_run([result(DAY - 1, prompt=100, cached=0, diem=50.0),
                         result(DAY + 1, role="prime", prompt=1000, cached=0),
                         result(DAY + 2, prompt=1000, cached=800, diem=49.0),
                         result(DAY + 3, prompt=1000, cached=None, status=500),
                         result(DAY + 4, estimated=1050)], None)
    # the answer without usage counts its estimate: 3,000 + 6 reported and 1,050 estimated
    assert await store.spend(DAY) == Spend(requests=4, tokens=4056, cost_usd=0.004, estimated_tokens=1050)
    assert await store.latest_balance() == Balance(usd=None, diem=49.0, at=DAY + 2)
    assert await store.usage_by_day(since=0.0, until=2 * DAY) == [
        {"day": 0, "requests": 1, "prompt_tokens": 100, "cached_tokens": 0, "completion_tokens": 2,
         "estimated_tokens": 0, "cost_usd": 0.001, "saved_usd": 0.0004},
        {"day": DAY, "requests": 4, "prompt_tokens": 3000, "cached_tokens": 800, "completion_tokens": 6,
         "estimated_tokens": 1050, "cost_usd": 0.004, "saved_usd": 0.0012}]
    stats = (await store.model_stats(DAY))["a"]
    assert stats == {"requests": 4, "errors": 1, "repeats": 1, "hits": 1, "prompt_tokens": 3000, "cached_tokens": 800,
                     "avg_latency": 0.5, "avg_ttft": None, "saved_usd": 0.0012, "cost_usd": 0.004,
                     "last_success": DAY + 4}


async def test_cycles(store: SqlProbeStore) -> None:
    mine = CycleRow("c1", "me", "scheduled", 10.0, planned=["a"])
    theirs = CycleRow("c2", "other", "manual", 20.0)
    await store.save_cycle(mine)
    await store.save_cycle(theirs)
    mine.status, mine.finished_at, mine.probed, mine.tokens, mine.estimated_tokens = "completed", 15.0, ["a"], 7, 3
    await store.save_cycle(mine)
    assert await store.interrupt_cycles(replica="me", at=30.0) == 1
    [latest, first] = await store.cycles(2)
    assert (latest.id, latest.status, latest.finished_at) == ("c2", "interrupted", 30.0)
    assert first == mine


async def test_history_from_before_estimates_counts_as_reported(make_database: Callable[[Schema], SqlDatabase]) -> None:
    # a history written before migration 3: its rows had only the reported counts, and still spend them
    before = make_database(Schema(SCHEMA.name, SCHEMA.filename, SCHEMA.migrations[:2]))
    await before.open()
    await before.write([Statement("INSERT INTO results (ts, run_id, source, model, test, step, role, status, "
                                  "prompt_tokens, completion_tokens, request_hash) VALUES "
                                  "(5.0, 'r', 'cycle', 'a', 'basic', 's', 'prime', 200, 1000, 2, 'h')", ())])
    await before.close()
    store = SqlProbeStore(make_database(SCHEMA))
    await store.open()
    try:
        await store.add_run([result(6.0, estimated=40)], None)
        assert await store.spend(0.0) == Spend(requests=2, tokens=1042, cost_usd=0.001, estimated_tokens=40)
        assert [r.estimated_tokens for r in await store.results(ResultFilter(), limit=5)] == [40, 0]
    finally:
        await store.close()


async def test_ttl_states(store: SqlProbeStore) -> None:
    state: dict[str, Any] = {"search": {"low": 5.0}, "pending": None}
    await store.save_ttl_state("a", state, 1.0)
    await store.save_ttl_state("a", {**state, "pending": {"due": 9.0}}, 2.0)
    assert await store.ttl_states() == {"a": {"search": {"low": 5.0}, "pending": {"due": 9.0}}}


async def test_retention_deletes_what_is_older(store: SqlProbeStore) -> None:
    await store.add_run([result(10.0), result(100.0)], verdict(10.0))
    await store.add_run([], verdict(100.0))
    await store.save_cycle(CycleRow("old", "me", "scheduled", 10.0, finished_at=11.0, status="completed"))
    await store.save_cycle(CycleRow("stuck", "me", "scheduled", 10.0))  # still running: kept
    assert await store.purge(50.0) == 3
    assert [r.ts for r in await store.results(ResultFilter(), limit=10)] == [100.0]
    assert [v.ts for v in await store.verdicts()] == [100.0]
    assert [c.id for c in await store.cycles(5)] == ["stuck"]


async def test_retention_runs_on_one_replica_at_a_time(store: SqlProbeStore, sql_engine: str,
                                                        request: pytest.FixtureRequest) -> None:
    if sql_engine != "postgres":
        pytest.skip("one SQLite file has one writer at a time already")
    import asyncpg

    from proxy.platform.postgres import job_key

    await store.add_run([result(10.0)], verdict(10.0))
    other = await asyncpg.connect(request.getfixturevalue("database_url"))
    async with other.transaction():  # another replica is purging just now
        await other.execute("SELECT pg_advisory_xact_lock($1)", job_key("cachegate_probe", "probe-retention"))
        assert await store.purge(50.0) == 0
    await other.close()
    assert await store.purge(50.0) == 2
