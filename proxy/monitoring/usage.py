"""Usage history: one SQLite row per proxied request, written in batches off the request path.

The observer's fold adds each row's values to one flat in-memory list (bounded: beyond :data:`MAX_BUFFER`
rows are dropped and counted), so buffered rows are no work for the garbage collector; a background task
inserts the buffer every second with multi-row ``INSERT`` statements (one SQLite step per
:data:`ROWS_PER_INSERT` rows, so the writer thread hands the GIL back and forth rarely). ``query``
answers ``/metrics/usage``; ``purge`` deletes rows older than the retention, run at start and then hourly.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from proxy.platform.sqlite import Database

logger = logging.getLogger("cachegate.usage")

MAX_BUFFER = 100_000
COLUMNS = ("ts", "request_id", "route", "model", "prompt_tokens", "completion_tokens", "cached_tokens", "outcome",
           "tier", "status", "latency_ms", "stream", "api_key_hash", "cost_usd", "saved_usd")
ROWS_PER_INSERT = 500  # 500 rows of 15 parameters: well below SQLite's limit of 32766


def _insert(rows: int) -> str:
    values = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES " + ", ".join([values] * rows)


def insert_flat(conn: sqlite3.Connection, flat: list[Any]) -> None:
    """Insert rows given as one flat list of values (COLUMNS order), in one transaction."""
    step = ROWS_PER_INSERT * len(COLUMNS)
    with conn:
        for start in range(0, len(flat), step):
            chunk = flat[start:start + step]
            conn.execute(_insert(len(chunk) // len(COLUMNS)), chunk)
BUCKETS = {"hour": 3600, "day": 86400}

Row = tuple[Any, ...]  # in COLUMNS order

_SUMS = """COUNT(*) AS requests,
    SUM(outcome = 'exact_hit') AS exact_hits,
    SUM(outcome = 'semantic_hit') AS semantic_hits,
    SUM(outcome = 'miss') AS misses,
    SUM(outcome = 'bypass') AS bypassed,
    SUM(status >= 500) AS errors,
    SUM(CASE WHEN outcome IN ('exact_hit', 'semantic_hit') THEN 0 ELSE prompt_tokens END) AS prompt_tokens,
    SUM(CASE WHEN outcome IN ('exact_hit', 'semantic_hit') THEN 0 ELSE completion_tokens END) AS completion_tokens,
    SUM(cached_tokens) AS cached_tokens,
    SUM(CASE WHEN outcome IN ('exact_hit', 'semantic_hit') THEN prompt_tokens + completion_tokens ELSE 0 END)
        AS tokens_saved,
    SUM(CASE WHEN outcome IN ('exact_hit', 'semantic_hit') THEN 0 ELSE prompt_tokens + completion_tokens END)
        AS tokens_used,
    SUM(cost_usd) AS cost_spent_usd,
    SUM(saved_usd) AS cost_saved_usd,
    AVG(latency_ms) AS avg_latency_ms"""


def _shape(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        value = row[key]
        if key.endswith("_usd"):
            value = round(value or 0.0, 8)
        elif key == "avg_latency_ms":
            value = round(value, 3) if value is not None else None
        elif key not in {"model", "bucket"}:
            value = int(value or 0)
        out[key] = value
    requests, hits = out.get("requests", 0), out.get("exact_hits", 0) + out.get("semantic_hits", 0)
    if "requests" in out:
        out["hit_rate_percent"] = round(100 * hits / requests, 2) if requests else 0.0
    return out


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class UsageStore:
    def __init__(self, db: Database, *, retention_days: int, on_drop: Callable[[int], None] | None = None,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self.db = db
        self.retention_days = retention_days
        self._flat: list[Any] = []  # the values of the buffered rows, one after the other
        self._on_drop = on_drop
        self._on_error = on_error
        self.dropped = 0
        self.written = 0

    def append(self, row: Row) -> None:
        """Queue one row (values in COLUMNS order)."""
        if len(self._flat) >= MAX_BUFFER * len(COLUMNS):
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(1)
            return
        self._flat.extend(row)

    def append_flat(self, values: list[Any]) -> None:
        """Queue rows given as one flat list of values (COLUMNS order)."""
        room = MAX_BUFFER * len(COLUMNS) - len(self._flat)
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
        return len(self._flat) // len(COLUMNS)

    async def flush(self) -> None:
        """Insert what is buffered; a failure is logged and the rows are kept for the next attempt."""
        if not self._flat:
            return
        flat, self._flat = self._flat, []
        rows = len(flat) // len(COLUMNS)
        try:
            await self.db.run(lambda conn: insert_flat(conn, flat))
        except Exception as exc:
            logger.warning("usage history: writing %d rows failed, will retry: %s", rows, exc)
            if self._on_error is not None:
                self._on_error("usage_sqlite", exc)
            room = max(0, MAX_BUFFER * len(COLUMNS) - len(self._flat))
            self._flat[:0] = flat[:room - room % len(COLUMNS)]
            return
        self.written += rows

    async def purge(self, now: float | None = None) -> int:
        """Delete rows older than the retention; returns how many."""
        cutoff = (now if now is not None else time.time()) - self.retention_days * 86400

        def delete(conn: sqlite3.Connection) -> int:
            with conn:
                return conn.execute("DELETE FROM usage WHERE ts < ?", (cutoff,)).rowcount

        removed = await self.db.run(delete)
        if removed:
            logger.info("usage history: deleted %d rows older than %d days", removed, self.retention_days)
        return removed

    async def query(self, *, start: float, end: float, model: str | None, bucket: str) -> dict[str, Any]:
        """Totals, per-model totals and a time series of ``bucket`` (hour|day, UTC) between start and end."""
        await self.flush()
        width = BUCKETS[bucket]
        where = "ts >= ? AND ts < ?" + (" AND model = ?" if model is not None else "")
        params: tuple[Any, ...] = (start, end, model) if model is not None else (start, end)

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            conn.row_factory = sqlite3.Row
            try:
                totals = conn.execute(f"SELECT {_SUMS} FROM usage WHERE {where}", params).fetchone()
                by_model = conn.execute(f"SELECT model, {_SUMS} FROM usage WHERE {where} GROUP BY model "
                                        "ORDER BY requests DESC, model", params).fetchall()
                series = conn.execute(f"SELECT CAST(ts / {width} AS INTEGER) * {width} AS bucket, {_SUMS} "
                                      f"FROM usage WHERE {where} GROUP BY 1 ORDER BY 1", params).fetchall()
            finally:
                conn.row_factory = None
            return {"totals": _shape(totals), "by_model": [_shape(row) for row in by_model],
                    "timeseries": [{**_shape(row), "bucket": iso(row["bucket"])} for row in series]}

        result = await self.db.run(read)
        return {"from": iso(start), "to": iso(end), "model": model, "bucket": bucket, **result}
