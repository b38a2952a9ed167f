"""The probe's history in SQL, written once for both engines: ``DATA_DIR/probe.sqlite3`` (the one SQLite
layer, every statement on its thread) or PostgreSQL at ``DATABASE_URL`` (replicas share it).

The schema is :mod:`proxy.probe.schema`. The SQL is the subset both engines speak (``COUNT(*) FILTER``,
``INSERT ... ON CONFLICT``, window functions); the bucket of a time comes from the engine's dialect.
Replicas that share ``DATA_DIR`` share the SQLite file too (WAL mode lets one write while the others read).

No write here is applied twice when PostgreSQL gives one up after its ``COMMIT`` was sent (``DATABASE_TIMEOUT``,
a cut connection): nothing tries ``add_run`` again (its callers log the failure and go on: the run's rows may
then be stored without the in-memory probe metrics counting them), and the other writes are upserts by key
(cycles, TTL states), an ``UPDATE`` that is the same done twice, and deletes by age. The usage history, which
does retry, makes each batch idempotent instead (:mod:`proxy.monitoring.usage`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from proxy.platform.sql import SqlDatabase, Statement
from proxy.probe.records import COLUMNS, CycleRow, ResultRow, VerdictRow, dumps, loads
from proxy.probe.store import Balance, ResultFilter, Spend

CACHING_SQL = "('caches', 'routing_limited', 'needs_hint')"
EXPORT_PAGE = 1000
_VERDICT_COLUMNS = ("ts", "started_at", "cycle_id", "run_id", "model", "verdict", "hint", "hit_ratio", "cache_rate",
                    "min_prefix_tokens", "step_tokens", "ttl_lower", "ttl_upper", "speedup", "contaminated",
                    "advertised_caching", "drift", "tokens_spent", "cost_usd", "error", "report")
_CYCLE_COLUMNS = ("id", "replica", "trigger", "started_at", "finished_at", "status", "reason", "planned", "probed",
                  "requests", "tokens", "estimated_tokens", "cost_usd")
_V = ", ".join(_VERDICT_COLUMNS)
#: the models with verdicts, as the table ``seen``, found by a skip scan (one index seek per model): the latest
#: verdict, streak and success of each are then a few steps of ``verdicts_model_id`` or ``verdicts_model_ts`` each
_SEEN = """WITH RECURSIVE seen(model) AS (
               SELECT MIN(model) FROM verdicts
               UNION ALL SELECT (SELECT MIN(model) FROM verdicts WHERE model > seen.model) FROM seen
               WHERE seen.model IS NOT NULL)"""
_LATEST_IDS = ("SELECT (SELECT MAX(id) FROM verdicts AS w WHERE w.model = seen.model) FROM seen "
               "WHERE seen.model IS NOT NULL")
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


#: booleans are stored as 0/1 on both engines (the columns are INTEGER), so the same SQL sums them
_FLAGS = {"stream", "contaminated", "advertised_caching"}


def _row(values: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(int(values[c]) if c in _FLAGS and values[c] is not None else values[c] for c in columns)


def _upsert(table: str, columns: Sequence[str], key: str) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns if c != key))


class SqlProbeStore:
    def __init__(self, db: SqlDatabase) -> None:
        self.db = db
        self.name = db.dialect.name

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.fetch("SELECT 1")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.db.fetch(sql, tuple(params))

    async def purge(self, before: float) -> int:
        """Only one replica at a time deletes (``0`` from the others meanwhile)."""
        counts = await self.db.write([
            Statement("DELETE FROM results WHERE ts < ?", (before,)),
            Statement("DELETE FROM verdicts WHERE ts < ?", (before,)),
            Statement("DELETE FROM cycles WHERE started_at < ? AND status != 'running'", (before,))],
            exclusive="probe-retention")
        return sum(counts or ())

    async def add_run(self, results: Sequence[ResultRow], verdict: VerdictRow | None) -> None:
        rows = []
        for r in results:
            values = r.as_dict()
            values["raw_usage"] = dumps(values["raw_usage"])
            rows.append(_row(values, COLUMNS))
        statements = []
        if rows:
            statements.append(Statement(f"INSERT INTO results ({_R}) VALUES ({', '.join('?' * len(COLUMNS))})", rows,
                                        many=True))
        if verdict is not None:
            values = verdict.as_dict(report=True)
            values["report"] = dumps(values["report"])
            statements.append(Statement(f"INSERT INTO verdicts ({_V}) VALUES "
                                        f"({', '.join('?' * len(_VERDICT_COLUMNS))})", _row(values, _VERDICT_COLUMNS)))
        if statements:
            await self.db.write(statements)

    async def save_cycle(self, cycle: CycleRow) -> None:
        values = cycle.as_dict()
        values["planned"], values["probed"] = dumps(values["planned"]), dumps(values["probed"])
        await self.db.write([Statement(_upsert("cycles", _CYCLE_COLUMNS, "id"), _row(values, _CYCLE_COLUMNS))])

    async def cycles(self, limit: int = 1) -> list[CycleRow]:
        rows = await self._read(f"SELECT {', '.join(_CYCLE_COLUMNS)} FROM cycles ORDER BY started_at DESC, id "
                                "LIMIT ?", (limit,))
        return [_cycle(row) for row in rows]

    async def interrupt_cycles(self, *, replica: str, at: float) -> int:
        counts = await self.db.write([Statement(
            "UPDATE cycles SET status = 'interrupted', finished_at = ?, reason = "
            "'its replica stopped leading before the cycle ended' WHERE status = 'running' AND replica != ?",
            (at, replica))])
        return counts[0] if counts else 0

    async def latest_verdicts(self) -> list[VerdictRow]:
        rows = await self._read(f"{_SEEN} SELECT {_V} FROM verdicts WHERE id IN ({_LATEST_IDS}) ORDER BY model")
        return [_verdict(row) for row in rows]

    async def verdicts(self, *, model: str | None = None, since: float | None = None, until: float | None = None,
                       limit: int | None = None) -> list[VerdictRow]:
        clause, params = _where(ResultFilter(model=model, since=since, until=until))
        sql = f"SELECT {_V} FROM verdicts WHERE {clause} ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_verdict(row) for row in await self._read(sql, params)]

    async def _models(self) -> list[str]:
        """The models with verdicts: one index seek each (a skip scan of ``verdicts_model_id``), not a scan."""
        return [model for (model,) in await self._read(f"{_SEEN} SELECT model FROM seen WHERE model IS NOT NULL")]

    async def recent_verdicts(self, per_model: int) -> dict[str, list[VerdictRow]]:
        # each model's newest, read backwards along its index: a window over every verdict sorted them all
        models = await self._models()
        if not models:
            return {}
        newest = " UNION ALL ".join(f"SELECT * FROM (SELECT {_V}, id FROM verdicts WHERE model = ? "
                                    "ORDER BY ts DESC, id DESC LIMIT ?) AS newest" for _ in models)
        params = [value for model in models for value in (model, per_model)]
        rows = await self._read(f"SELECT {_V} FROM ({newest}) AS recent ORDER BY model, ts, id", params)
        out: dict[str, list[VerdictRow]] = {}
        for row in rows:
            verdict = _verdict(row)
            out.setdefault(verdict.model, []).append(verdict)
        return out

    async def streaks(self) -> dict[str, float]:
        # the first verdict after the last one that differs from the model's latest (a model's verdicts are written
        # in the order of their times): from each model's latest, back to the last different one (as far as the
        # streak goes), then one step forward. Every step is "by id, LIMIT 1", short along verdicts_model_id or
        # the primary key, whichever the planner takes (a MIN(ts) let PostgreSQL walk verdicts_ts from the first
        # verdict: 6.4 s at 833,333). MATERIALIZED: else SQLite evaluates each step again for every row of the next
        rows = await self._read(f"""{_SEEN},
            latest AS MATERIALIZED (SELECT model, verdict FROM verdicts WHERE id IN ({_LATEST_IDS})),
            broken AS MATERIALIZED (SELECT l.model, (SELECT w.id FROM verdicts AS w WHERE w.model = l.model
                                                     AND w.verdict != l.verdict ORDER BY w.id DESC LIMIT 1) AS id
                                    FROM latest AS l)
            SELECT b.model, (SELECT w.ts FROM verdicts AS w WHERE w.model = b.model AND w.id > COALESCE(b.id, 0)
                             ORDER BY w.id LIMIT 1)
            FROM broken AS b""")
        return {model: ts for model, ts in rows}

    async def last_successes(self) -> dict[str, float]:
        rows = await self._read(f"""{_SEEN}
            SELECT model, (SELECT w.ts FROM verdicts AS w WHERE w.model = seen.model AND w.error IS NULL
                           ORDER BY w.ts DESC LIMIT 1) AS ts FROM seen WHERE model IS NOT NULL""")
        return {model: ts for model, ts in rows if ts is not None}

    async def verdict_series(self, *, since: float, until: float | None, width: int,
                             model: str | None = None) -> list[dict[str, Any]]:
        clause, params = _where(ResultFilter(model=model, since=since, until=until))
        rows = await self._read(
            f"SELECT {self.db.dialect.bucket('ts', width)} AS bucket, model, COUNT(*), "
            f"COUNT(*) FILTER (WHERE verdict IN {CACHING_SQL}), AVG(cache_rate), AVG(hit_ratio) FROM verdicts "
            f"WHERE {clause} GROUP BY 1, 2 ORDER BY 1, 2", params)
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
        (requests, tokens, estimated, cost), = await self._read(
            "SELECT COUNT(*), COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) "
            "+ estimated_tokens), 0), COALESCE(SUM(estimated_tokens), 0), "
            f"COALESCE(SUM(cost_usd), 0) FROM results WHERE {clause}", params)
        return Spend(int(requests), int(tokens), round(float(cost), 8), int(estimated))

    async def usage_by_day(self, *, since: float, until: float | None) -> list[dict[str, Any]]:
        clause, params = _where(ResultFilter(since=since, until=until))
        rows = await self._read(
            f"SELECT {self.db.dialect.bucket('ts', 86400)}, COUNT(*), COALESCE(SUM(prompt_tokens), 0), "
            "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
            "COALESCE(SUM(estimated_tokens), 0), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(saved_usd), 0) "
            f"FROM results WHERE {clause} GROUP BY 1 ORDER BY 1", params)
        return [{"day": day, "requests": n, "prompt_tokens": p, "cached_tokens": c, "completion_tokens": o,
                 "estimated_tokens": e, "cost_usd": round(cost, 8), "saved_usd": round(saved, 8)}
                for day, n, p, c, o, e, cost, saved in rows]

    async def model_stats(self, since: float) -> dict[str, dict[str, Any]]:
        rows = await self._read("""
            SELECT model, COUNT(*), COUNT(*) FILTER (WHERE status != 200 OR error IS NOT NULL),
                   COUNT(*) FILTER (WHERE role = 'repeat' AND cached_tokens IS NOT NULL),
                   COUNT(*) FILTER (WHERE role = 'repeat' AND cached_tokens > 0),
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
        await self.db.write([Statement(_upsert("ttl_state", ("model", "updated_at", "state"), "model"),
                                       (model, at, dumps(state)))])
