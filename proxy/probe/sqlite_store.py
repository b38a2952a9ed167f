"""The probe's history in SQLite (``DATA_DIR/probe.sqlite3``), through the one SQLite layer.

Every statement runs on the :class:`~proxy.platform.sqlite.Database` thread; the schema is
:mod:`proxy.probe.schema`. Replicas that share ``DATA_DIR`` share this file (WAL mode lets one write while
the others read).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

from proxy.platform.sqlite import Database
from proxy.probe.records import COLUMNS, CycleRow, ResultRow, VerdictRow, dumps, loads
from proxy.probe.store import Balance, ResultFilter, Spend

CACHING_SQL = "('caches', 'routing_limited', 'needs_hint')"
EXPORT_PAGE = 1000
_VERDICT_COLUMNS = ("ts", "started_at", "cycle_id", "run_id", "model", "verdict", "hint", "hit_ratio", "cache_rate",
                    "min_prefix_tokens", "step_tokens", "ttl_lower", "ttl_upper", "speedup", "contaminated",
                    "advertised_caching", "drift", "tokens_spent", "cost_usd", "error", "report")
_CYCLE_COLUMNS = ("id", "replica", "trigger", "started_at", "finished_at", "status", "reason", "planned", "probed",
                  "requests", "tokens", "cost_usd")
_V = ", ".join(_VERDICT_COLUMNS)
_R = ", ".join(COLUMNS)


def _result(row: Sequence[Any]) -> ResultRow:
    values = dict(zip(COLUMNS, row, strict=True))
    values["stream"] = bool(values["stream"])
    values["raw_usage"] = loads(values["raw_usage"])
    return ResultRow(**values)


def _verdict(row: Sequence[Any]) -> VerdictRow:
    values = dict(zip(_VERDICT_COLUMNS, row, strict=True))
    values["contaminated"] = bool(values["contaminated"])
    if values["advertised_caching"] is not None:
        values["advertised_caching"] = bool(values["advertised_caching"])
    values["report"] = loads(values["report"]) or {}
    return VerdictRow(**values)


def _cycle(row: Sequence[Any]) -> CycleRow:
    values = dict(zip(_CYCLE_COLUMNS, row, strict=True))
    values["planned"], values["probed"] = loads(values["planned"]), loads(values["probed"])
    return CycleRow(**values)


def _where(where: ResultFilter) -> tuple[str, list[Any]]:
    clauses, params = ["1 = 1"], []
    for clause, value in (("model = ?", where.model), ("test = ?", where.test), ("source = ?", where.source),
                          ("ts >= ?", where.since), ("ts < ?", where.until)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses), params


class SqliteProbeStore:
    name = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.db.run(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    async def purge(self, before: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            with conn:
                removed = conn.execute("DELETE FROM results WHERE ts < ?", (before,)).rowcount
                removed += conn.execute("DELETE FROM verdicts WHERE ts < ?", (before,)).rowcount
                removed += conn.execute("DELETE FROM cycles WHERE started_at < ? AND status != 'running'",
                                        (before,)).rowcount
            return removed

        return await self.db.run(delete)

    async def add_run(self, results: Sequence[ResultRow], verdict: VerdictRow | None) -> None:
        rows = []
        for r in results:
            values = r.as_dict()
            values["raw_usage"] = dumps(values["raw_usage"])
            rows.append(tuple(values[c] for c in COLUMNS))

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                if rows:
                    conn.executemany(f"INSERT INTO results ({_R}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
                if verdict is not None:
                    values = verdict.as_dict(report=True)
                    values["report"] = dumps(values["report"])
                    conn.execute(f"INSERT INTO verdicts ({_V}) VALUES ({', '.join('?' * len(_VERDICT_COLUMNS))})",
                                 tuple(values[c] for c in _VERDICT_COLUMNS))

        await self.db.run(write)

    async def save_cycle(self, cycle: CycleRow) -> None:
        values = cycle.as_dict()
        values["planned"], values["probed"] = dumps(values["planned"]), dumps(values["probed"])
        row = tuple(values[c] for c in _CYCLE_COLUMNS)

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute(f"INSERT OR REPLACE INTO cycles ({', '.join(_CYCLE_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_CYCLE_COLUMNS))})", row)

        await self.db.run(write)

    async def cycles(self, limit: int = 1) -> list[CycleRow]:
        rows = await self._read(f"SELECT {', '.join(_CYCLE_COLUMNS)} FROM cycles ORDER BY started_at DESC, id "
                                "LIMIT ?", (limit,))
        return [_cycle(row) for row in rows]

    async def interrupt_cycles(self, *, replica: str, at: float) -> int:
        def write(conn: sqlite3.Connection) -> int:
            with conn:
                return conn.execute("UPDATE cycles SET status = 'interrupted', finished_at = ?, reason = "
                                    "'its replica stopped leading before the cycle ended' "
                                    "WHERE status = 'running' AND replica != ?", (at, replica)).rowcount

        return await self.db.run(write)

    async def latest_verdicts(self) -> list[VerdictRow]:
        rows = await self._read(f"SELECT {_V} FROM verdicts WHERE id IN (SELECT MAX(id) FROM verdicts GROUP BY model) "
                                "ORDER BY model")
        return [_verdict(row) for row in rows]

    async def verdicts(self, *, model: str | None = None, since: float | None = None, until: float | None = None,
                       limit: int | None = None) -> list[VerdictRow]:
        clause, params = _where(ResultFilter(model=model, since=since, until=until))
        sql = f"SELECT {_V} FROM verdicts WHERE {clause} ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_verdict(row) for row in await self._read(sql, params)]

    async def recent_verdicts(self, per_model: int) -> dict[str, list[VerdictRow]]:
        rows = await self._read(
            f"SELECT {_V} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY model ORDER BY ts DESC, id DESC) AS n "
            "FROM verdicts) WHERE n <= ? ORDER BY model, ts, id", (per_model,))
        out: dict[str, list[VerdictRow]] = {}
        for row in rows:
            verdict = _verdict(row)
            out.setdefault(verdict.model, []).append(verdict)
        return out

    async def streaks(self) -> dict[str, float]:
        # the first verdict after the last one that differs from the model's latest
        rows = await self._read("""
            WITH latest AS (SELECT model, verdict FROM verdicts WHERE id IN (SELECT MAX(id) FROM verdicts
                                                                              GROUP BY model)),
                 broken AS (SELECT v.model, MAX(v.id) AS id FROM verdicts v JOIN latest l ON v.model = l.model
                            WHERE v.verdict != l.verdict GROUP BY v.model)
            SELECT v.model, MIN(v.ts) FROM verdicts v LEFT JOIN broken b ON v.model = b.model
            WHERE b.id IS NULL OR v.id > b.id GROUP BY v.model""")
        return {model: ts for model, ts in rows}

    async def last_successes(self) -> dict[str, float]:
        rows = await self._read("SELECT model, MAX(ts) FROM verdicts WHERE error IS NULL GROUP BY model")
        return {model: ts for model, ts in rows}

    async def verdict_series(self, *, since: float, until: float | None, width: int,
                             model: str | None = None) -> list[dict[str, Any]]:
        clause, params = _where(ResultFilter(model=model, since=since, until=until))
        rows = await self._read(
            f"SELECT CAST(ts / {int(width)} AS INTEGER) * {int(width)} AS bucket, model, COUNT(*), "
            f"SUM(verdict IN {CACHING_SQL}), AVG(cache_rate), AVG(hit_ratio) FROM verdicts WHERE {clause} "
            "GROUP BY 1, 2 ORDER BY 1, 2", params)
        return [{"bucket": bucket, "model": name, "runs": runs, "caching": caching,
                 "cache_rate": None if rate is None else round(rate, 4),
                 "hit_ratio": None if hit is None else round(hit, 4)}
                for bucket, name, runs, caching, rate, hit in rows]

    async def results(self, where: ResultFilter, *, limit: int) -> list[ResultRow]:
        clause, params = _where(where)
        rows = await self._read(f"SELECT {_R} FROM results WHERE {clause} ORDER BY ts DESC, id DESC LIMIT ?",
                                [*params, limit])
        return [_result(row) for row in rows]

    async def export(self, where: ResultFilter) -> AsyncIterator[ResultRow]:
        clause, params = _where(where)
        after = 0
        while True:
            rows = await self._read(f"SELECT id, {_R} FROM results WHERE {clause} AND id > ? ORDER BY id LIMIT ?",
                                    [*params, after, EXPORT_PAGE])
            for row in rows:
                yield _result(row[1:])
            if len(rows) < EXPORT_PAGE:
                return
            after = rows[-1][0]

    async def spend(self, since: float, until: float | None = None) -> Spend:
        clause, params = _where(ResultFilter(since=since, until=until))
        (requests, tokens, cost), = await self._read(
            "SELECT COUNT(*), COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0), "
            f"COALESCE(SUM(cost_usd), 0) FROM results WHERE {clause}", params)
        return Spend(int(requests), int(tokens), round(float(cost), 8))

    async def usage_by_day(self, *, since: float, until: float | None) -> list[dict[str, Any]]:
        clause, params = _where(ResultFilter(since=since, until=until))
        rows = await self._read(
            "SELECT CAST(ts / 86400 AS INTEGER) * 86400, COUNT(*), COALESCE(SUM(prompt_tokens), 0), "
            "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0), "
            f"COALESCE(SUM(saved_usd), 0) FROM results WHERE {clause} GROUP BY 1 ORDER BY 1", params)
        return [{"day": day, "requests": n, "prompt_tokens": p, "cached_tokens": c, "completion_tokens": o,
                 "cost_usd": round(cost, 8), "saved_usd": round(saved, 8)} for day, n, p, c, o, cost, saved in rows]

    async def model_stats(self, since: float) -> dict[str, dict[str, Any]]:
        rows = await self._read("""
            SELECT model, COUNT(*), SUM(status != 200 OR error IS NOT NULL),
                   SUM(role = 'repeat' AND cached_tokens IS NOT NULL), SUM(role = 'repeat' AND cached_tokens > 0),
                   COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(cached_tokens), 0), AVG(latency), AVG(ttft),
                   SUM(saved_usd), SUM(cost_usd), MAX(CASE WHEN status = 200 AND error IS NULL THEN ts END)
            FROM results WHERE ts >= ? GROUP BY model""", (since,))
        names = ("requests", "errors", "repeats", "hits", "prompt_tokens", "cached_tokens", "avg_latency", "avg_ttft",
                 "saved_usd", "cost_usd", "last_success")
        out = {}
        for model, *values in rows:
            stats = dict(zip(names, values, strict=True))
            for key in ("avg_latency", "avg_ttft"):
                stats[key] = None if stats[key] is None else round(stats[key], 4)
            for key in ("saved_usd", "cost_usd"):
                stats[key] = None if stats[key] is None else round(stats[key], 8)
            out[model] = stats
        return out

    async def latest_balance(self) -> Balance | None:
        rows = await self._read("SELECT balance_usd, balance_diem, ts FROM results WHERE balance_usd IS NOT NULL "
                                "OR balance_diem IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 1")
        return Balance(*rows[0]) if rows else None

    async def ttl_states(self) -> dict[str, dict[str, Any]]:
        return {model: loads(state) for model, state in await self._read("SELECT model, state FROM ttl_state")}

    async def save_ttl_state(self, model: str, state: dict[str, Any], at: float) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("INSERT OR REPLACE INTO ttl_state (model, updated_at, state) VALUES (?, ?, ?)",
                             (model, at, dumps(state)))

        await self.db.run(write)
