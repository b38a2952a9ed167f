"""Usage history: one row per proxied request, written in batches off the request path, with hourly sums.

The observer's fold adds each row's values to one flat in-memory list (bounded: beyond :data:`MAX_BUFFER`
rows are dropped and counted), so buffered rows are no work for the garbage collector. A background task
writes the buffer every second, in one transaction: the rows by the engine's bulk path (multi-row
``INSERT`` on SQLite, ``COPY`` on PostgreSQL) and their sums added to ``usage_hourly`` per hour and model,
summed by the database itself (PostgreSQL's server, SQLite's C code in its writer process), not by the event loop.
A write that fails (the database is down or slow) keeps the rows for the next attempt; the request path
never waits for it. Each batch is written once however often it is tried: it gets an id when it is cut from the
buffer, keeps it across its retries, and its transaction records the id in ``usage_batches`` first. A failure
may be a lost answer (a timeout or a cut connection after the ``COMMIT`` was sent): the retry then finds its id
and writes nothing, where it would have added its rows and hourly sums a second time.

``query`` answers ``/metrics/usage`` from the hourly sums for the whole hours of the range and from the rows
for the partial hours at either end, so a 30-day window costs the same at 10 million rows as at 10
thousand. ``purge`` deletes what is older than the retention (whole hours, so sums and rows agree), on one
replica at a time; it runs at start and then hourly. The SQL is the same on both engines
(:mod:`proxy.platform.sql`); only the bucket expression comes from the dialect.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proxy.platform.sql import SqlDatabase, Statement, batch_table

logger = logging.getLogger("cachegate.usage")

MAX_BUFFER = 100_000
COLUMNS = ("ts", "request_id", "route", "model", "prompt_tokens", "completion_tokens", "cached_tokens", "outcome",
           "tier", "status", "latency_ms", "stream", "api_key_hash", "cost_usd", "saved_usd")
BUCKETS = {"hour": 3600, "day": 86400}
HOUR = 3600
#: the sums kept per hour and model, in ``usage_hourly`` and in every partial answer
SUMS = ("requests", "exact_hits", "semantic_hits", "misses", "bypassed", "errors", "prompt_tokens",
        "completion_tokens", "cached_tokens", "tokens_saved", "tokens_used", "cost_usd", "saved_usd", "latency_ms")
_HIT = "outcome IN ('exact_hit', 'semantic_hit')"
ROW_SUMS = f"""COUNT(*),
    COUNT(*) FILTER (WHERE outcome = 'exact_hit'), COUNT(*) FILTER (WHERE outcome = 'semantic_hit'),
    COUNT(*) FILTER (WHERE outcome = 'miss'), COUNT(*) FILTER (WHERE outcome = 'bypass'),
    COUNT(*) FILTER (WHERE status >= 500),
    COALESCE(SUM(CASE WHEN {_HIT} THEN 0 ELSE prompt_tokens END), 0),
    COALESCE(SUM(CASE WHEN {_HIT} THEN 0 ELSE completion_tokens END), 0),
    COALESCE(SUM(cached_tokens), 0),
    COALESCE(SUM(CASE WHEN {_HIT} THEN prompt_tokens + completion_tokens ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN {_HIT} THEN 0 ELSE prompt_tokens + completion_tokens END), 0),
    COALESCE(SUM(cost_usd), 0), COALESCE(SUM(saved_usd), 0), COALESCE(SUM(latency_ms), 0)"""
#: the batch's sums added to each (hour, model), in key order: replicas adding to the same sums lock them in the
#: same order, so their transactions never deadlock (``WHERE true``: SQLite's parser needs a WHERE before an
#: upsert's ON CONFLICT)
_ADD_HOURLY = (f"INSERT INTO usage_hourly (hour, model, {', '.join(SUMS)}) "
               f"SELECT {{hour}}, COALESCE(model, ''), {ROW_SUMS} FROM {batch_table('usage')} WHERE true "
               "GROUP BY 1, 2 ORDER BY 1, 2 ON CONFLICT (hour, model) DO UPDATE SET "
               + ", ".join(f"{name} = usage_hourly.{name} + excluded.{name}" for name in SUMS))

#: records a batch's id, first in its transaction: no row changed means an earlier attempt at it committed
_ONCE = "INSERT INTO usage_batches (id, applied_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"
#: seconds a batch's id is kept once applied: a batch is tried again at the next flush (a second later), so only a
#: replica that lost the database for a day right after a commit whose answer it lost would count one twice
BATCH_IDS_KEPT = 86400

Row = tuple[Any, ...]  # in COLUMNS order
Sums = list[float]  # in SUMS order


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _shape(sums: Sums) -> dict[str, Any]:
    values = dict(zip(SUMS, sums, strict=True))
    requests = int(values["requests"])
    out: dict[str, Any] = {name: int(values[name]) for name in SUMS[:11]}
    out["cost_spent_usd"] = round(values["cost_usd"], 8)
    out["cost_saved_usd"] = round(values["saved_usd"], 8)
    out["avg_latency_ms"] = round(values["latency_ms"] / requests, 3) if requests else None
    hits = out["exact_hits"] + out["semantic_hits"]
    out["hit_rate_percent"] = round(100 * hits / requests, 2) if requests else 0.0
    return out


def _add(into: dict[Any, Sums], key: Any, sums: Sums) -> None:
    total = into.get(key)
    if total is None:
        into[key] = list(sums)
    else:
        for i, value in enumerate(sums):
            total[i] += value


@dataclass(frozen=True)
class _Batch:
    """Rows cut from the buffer to be written together, as one flat list of values, and the id that makes
    writing them idempotent (the same on every attempt)."""

    id: str
    flat: list[Any]
    #: the order batches were cut in: two flushes (a reader's and the loop's) may fail at once
    seq: int


class UsageStore:
    def __init__(self, db: SqlDatabase, *, retention_days: int, on_drop: Callable[[int], None] | None = None,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self.db = db
        self.retention_days = retention_days
        self._flat: list[Any] = []  # the values of the buffered rows, one after the other
        self._retry: list[_Batch] = []  # batches whose write failed, oldest first, each tried again under its id
        self._held = 0  # the values in _retry (the buffer's bound counts them)
        self._cut = 0  # batches cut so far
        self._writing = 0  # rows taken from the buffer by a write that has not ended yet
        self._on_drop = on_drop
        self._on_error = on_error
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self.repeats_skipped = 0  # batches tried again that an attempt whose answer was lost had written
        self.last_error: str | None = None
        self._add_hourly = Statement(_ADD_HOURLY.format(hour=db.dialect.bucket("ts", HOUR)))

    def append(self, row: Row) -> None:
        """Queue one row (values in COLUMNS order)."""
        if len(self._flat) + self._held >= MAX_BUFFER * len(COLUMNS):
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(1)
            return
        self._flat.extend(row)

    def append_flat(self, values: list[Any]) -> None:
        """Queue rows given as one flat list of values (COLUMNS order)."""
        room = max(0, MAX_BUFFER * len(COLUMNS) - len(self._flat) - self._held)
        if len(values) > room:
            room -= room % len(COLUMNS)
            dropped = (len(values) - room) // len(COLUMNS)
            self.dropped += dropped
            if self._on_drop is not None:
                self._on_drop(dropped)
            values = values[:room]
        self._flat += values

    @property
    def pending(self) -> int:
        """Rows not written yet: buffered, or in a write that has not ended (one a hung database holds)."""
        return (len(self._flat) + self._held) // len(COLUMNS) + self._writing

    def state(self) -> dict[str, Any]:
        """What ``/health`` and ``/metrics`` show of the writer: rows waiting, written and dropped."""
        return {"pending": self.pending, "written": self.written, "dropped": self.dropped,
                "buffer_rows": MAX_BUFFER, "write_failures": self.failures, "repeats_skipped": self.repeats_skipped,
                "last_error": self.last_error}

    async def flush(self) -> None:
        """Write what is buffered: the batches whose write failed first, oldest first, each under the id it got
        when it was cut (so one that did commit is not written again), then the rows that arrived since, as a new
        batch. A failure is logged and what was not written is kept for the next attempt."""
        while self._retry:
            batch = self._retry.pop(0)
            self._held -= len(batch.flat)
            if not await self._attempt(batch):
                return  # the database fails: the newer rows wait too
        if self._flat:
            self._cut += 1
            batch, self._flat = _Batch(uuid.uuid4().hex, self._flat, self._cut), []
            await self._attempt(batch)

    async def _attempt(self, batch: _Batch) -> bool:
        rows = len(batch.flat) // len(COLUMNS)
        self._writing += rows
        try:
            return await self._write(batch, rows)
        finally:
            self._writing -= rows

    async def _write(self, batch: _Batch, rows: int) -> bool:
        try:
            applied = await self.db.insert_rows("usage", COLUMNS, batch.flat, then=[self._add_hourly],
                                                once=Statement(_ONCE, (batch.id, time.time())))
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("usage history: writing %d rows failed, will retry: %s", rows, self.last_error)
            if self._on_error is not None:
                self._on_error(f"usage_{self.db.dialect.name}", exc)
            self._keep(batch)
            return False
        if not applied:
            self.repeats_skipped += 1
            logger.info("usage history: %d rows tried again had been written by an attempt whose answer was lost; "
                        "not counted twice", rows)
        self.written += rows
        self.last_error = None
        return True

    def _keep(self, failed: _Batch) -> None:
        """Put ``failed`` back among the kept batches (oldest first), under its id, and bound what is kept: the
        older rows go first, what arrived since fills the rest."""
        room = MAX_BUFFER * len(COLUMNS)
        before = len(failed.flat) + self._held + len(self._flat)
        kept = []
        for batch in sorted((failed, *self._retry), key=lambda one: one.seq):
            values = batch.flat if len(batch.flat) <= room else batch.flat[:room]
            if values:  # a batch cut short keeps its id: if it was applied, so were the rows cut off
                kept.append(batch if values is batch.flat else _Batch(batch.id, values, batch.seq))
            room -= len(values)
        later = self._flat if len(self._flat) <= room else self._flat[:room]
        self._retry, self._flat = kept, later
        self._held = sum(len(batch.flat) for batch in kept)
        lost = (before - self._held - len(later)) // len(COLUMNS)
        if lost:
            self.dropped += lost
            if self._on_drop is not None:
                self._on_drop(lost)

    async def purge(self, now: float | None = None) -> int:
        """Delete rows (and hourly sums) of the whole hours older than the retention, and the ids of batches
        applied more than :data:`BATCH_IDS_KEPT` ago; how many rows went.
        ``0`` also when another replica is deleting them just now."""
        now = now if now is not None else time.time()
        cutoff = now - self.retention_days * 86400
        cutoff = math.floor(cutoff / HOUR) * HOUR
        counts = await self.db.write([Statement("DELETE FROM usage WHERE ts < ?", (float(cutoff),)),
                                      Statement("DELETE FROM usage_hourly WHERE hour < ?", (int(cutoff),)),
                                      Statement("DELETE FROM usage_batches WHERE applied_at < ?",
                                                (now - BATCH_IDS_KEPT,))],
                                     exclusive="usage-retention")
        removed = counts[0] if counts else 0
        if removed:
            logger.info("usage history: deleted %d rows older than %d days", removed, self.retention_days)
        return removed

    async def _rows(self, start: float, end: float, model: str | None, width: int) -> list[tuple[Any, ...]]:
        where = "ts >= ? AND ts < ?" + (" AND model = ?" if model is not None else "")
        params: tuple[Any, ...] = (start, end, model) if model is not None else (start, end)
        return await self.db.fetch(f"SELECT {self.db.dialect.bucket('ts', width)}, model, {ROW_SUMS} FROM usage "
                                   f"WHERE {where} GROUP BY 1, 2", params)

    async def _hours(self, start: int, end: int, model: str | None, width: int) -> list[tuple[Any, ...]]:
        where = "hour >= ? AND hour < ?" + (" AND model = ?" if model is not None else "")
        params: tuple[Any, ...] = (start, end, model) if model is not None else (start, end)
        rows = await self.db.fetch(f"SELECT {self.db.dialect.bucket('hour', width)}, model, "
                                   f"{', '.join(f'SUM({name})' for name in SUMS)} FROM usage_hourly WHERE {where} "
                                   "GROUP BY 1, 2", params)
        return [(bucket, name or None, *sums) for bucket, name, *sums in rows]

    async def query(self, *, start: float, end: float, model: str | None, bucket: str) -> dict[str, Any]:
        """Totals, per-model totals and a time series of ``bucket`` (hour|day, UTC) between start and end."""
        await self.flush()
        width = BUCKETS[bucket]
        first, last = math.ceil(start / HOUR) * HOUR, math.floor(end / HOUR) * HOUR  # the whole hours
        if first < last:
            parts = await self._hours(first, last, model, width)
            for low, high in ((start, first), (last, end)):
                if low < high:
                    parts += await self._rows(low, high, model, width)
        else:
            parts = await self._rows(start, end, model, width)
        totals: dict[Any, Sums] = {}
        by_model: dict[Any, Sums] = {}
        series: dict[Any, Sums] = {}
        for bucket_start, name, *sums in parts:
            _add(totals, None, sums)
            _add(by_model, name, sums)
            _add(series, int(bucket_start), sums)
        models = sorted(by_model.items(), key=lambda item: (-item[1][0], item[0] is not None, item[0] or ""))
        return {"from": iso(start), "to": iso(end), "model": model, "bucket": bucket,
                "totals": _shape(totals.get(None, [0] * len(SUMS))),
                "by_model": [{"model": name, **_shape(sums)} for name, sums in models],
                "timeseries": [{"bucket": iso(at), **_shape(sums)} for at, sums in sorted(series.items())]}
