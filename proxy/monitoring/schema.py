"""The monitoring database: usage history (its rows, their hourly sums and the ids of the batches applied) and
the savings ledger.

Monitoring owns this schema: ``DATA_DIR/monitoring.sqlite3``, or the schema ``cachegate_monitoring`` at
``DATABASE_URL`` (:mod:`proxy.platform.postgres`). Each migration is written once, as a function of the
engine's :class:`~proxy.platform.sql.Dialect` (only column types and one SQLite-only clause differ), and
never edited once released: the SQLite text of versions 1 and 2 is what it always was.

On PostgreSQL the ``usage`` table is ready to become a TimescaleDB hypertable in one step (README,
"Time series at scale"): it has no unique key without its time column, and ``usage_time`` is the immutable
function that turns its Unix seconds into the ``timestamptz`` TimescaleDB partitions by.
"""

from __future__ import annotations

from proxy.platform.sql import POSTGRES, SQLITE, Dialect, Migration, Schema

NAME = "monitoring"
FILENAME = "monitoring.sqlite3"


def _usage(d: Dialect) -> tuple[str, ...]:
    statements: tuple[str, ...] = (
        f"""CREATE TABLE usage (
               id {d.sequence},
               ts {d.real} NOT NULL,
               request_id TEXT NOT NULL,
               route TEXT NOT NULL,
               model TEXT,
               prompt_tokens INTEGER NOT NULL DEFAULT 0,
               completion_tokens INTEGER NOT NULL DEFAULT 0,
               cached_tokens INTEGER NOT NULL DEFAULT 0,
               outcome TEXT NOT NULL,
               tier TEXT,
               status INTEGER NOT NULL,
               latency_ms {d.real} NOT NULL,
               stream INTEGER NOT NULL DEFAULT 0,
               api_key_hash TEXT,
               cost_usd {d.real} NOT NULL DEFAULT 0,
               saved_usd {d.real} NOT NULL DEFAULT 0
           )""",
        # one index: a second one (model, ts) doubled the cost of each insert; queries scan the time range
        "CREATE INDEX usage_ts ON usage (ts)",
    )
    if d is POSTGRES:
        statements += ("CREATE FUNCTION usage_time(seconds DOUBLE PRECISION) RETURNS timestamptz "
                       "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT to_timestamp(seconds)'",)
    return statements


def _ledger(d: Dialect) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE ledger (
               scope TEXT NOT NULL,
               name TEXT NOT NULL,
               value {d.real} NOT NULL DEFAULT 0,
               PRIMARY KEY (scope, name)
           ){d.keyed}""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )


def _hourly(d: Dialect) -> tuple[str, ...]:
    """Per UTC hour and model, the sums ``/metrics/usage`` reports: a 30-day window reads 720 rows per model
    instead of every request (the rows are still read for the partial hours at either end)."""
    hour = d.bucket("ts", 3600)
    hit = "outcome IN ('exact_hit', 'semantic_hit')"
    return (
        f"""CREATE TABLE usage_hourly (
               hour BIGINT NOT NULL,
               model TEXT NOT NULL,
               requests BIGINT NOT NULL,
               exact_hits BIGINT NOT NULL,
               semantic_hits BIGINT NOT NULL,
               misses BIGINT NOT NULL,
               bypassed BIGINT NOT NULL,
               errors BIGINT NOT NULL,
               prompt_tokens BIGINT NOT NULL,
               completion_tokens BIGINT NOT NULL,
               cached_tokens BIGINT NOT NULL,
               tokens_saved BIGINT NOT NULL,
               tokens_used BIGINT NOT NULL,
               cost_usd {d.real} NOT NULL,
               saved_usd {d.real} NOT NULL,
               latency_ms {d.real} NOT NULL,
               PRIMARY KEY (hour, model)
           ){d.keyed}""",
        # the rows written before this table existed ('' stands for "no model": a key cannot be NULL); the sums
        # are written out, not monitoring.usage.ROW_SUMS: a migration is history and must not change with the code
        f"""INSERT INTO usage_hourly
            SELECT {hour}, COALESCE(model, ''), COUNT(*),
                   COUNT(*) FILTER (WHERE outcome = 'exact_hit'), COUNT(*) FILTER (WHERE outcome = 'semantic_hit'),
                   COUNT(*) FILTER (WHERE outcome = 'miss'), COUNT(*) FILTER (WHERE outcome = 'bypass'),
                   COUNT(*) FILTER (WHERE status >= 500),
                   COALESCE(SUM(CASE WHEN {hit} THEN 0 ELSE prompt_tokens END), 0),
                   COALESCE(SUM(CASE WHEN {hit} THEN 0 ELSE completion_tokens END), 0),
                   COALESCE(SUM(cached_tokens), 0),
                   COALESCE(SUM(CASE WHEN {hit} THEN prompt_tokens + completion_tokens ELSE 0 END), 0),
                   COALESCE(SUM(CASE WHEN {hit} THEN 0 ELSE prompt_tokens + completion_tokens END), 0),
                   COALESCE(SUM(cost_usd), 0), COALESCE(SUM(saved_usd), 0), COALESCE(SUM(latency_ms), 0)
            FROM usage GROUP BY 1, 2""",
    )


def _batches(d: Dialect) -> tuple[str, ...]:
    """The ids of the usage batches written lately, each recorded in its batch's transaction: a batch tried again
    after an attempt that committed but whose answer was lost finds its id and writes nothing (its rows and hourly
    sums would count twice). Kept a day (``monitoring.usage.BATCH_IDS_KEPT``), pruned with the retention."""
    return (
        f"""CREATE TABLE usage_batches (
               id TEXT PRIMARY KEY,
               applied_at {d.real} NOT NULL
           ){d.keyed}""",
        "CREATE INDEX usage_batches_applied_at ON usage_batches (applied_at)",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "usage history", _usage(SQLITE), postgres=_usage(POSTGRES)),
    Migration(2, "savings ledger", _ledger(SQLITE), postgres=_ledger(POSTGRES)),
    Migration(3, "hourly sums of the usage history", _hourly(SQLITE), postgres=_hourly(POSTGRES)),
    Migration(4, "ids of the usage batches applied, so a retried one is applied once", _batches(SQLITE),
              postgres=_batches(POSTGRES)),
)

SCHEMA = Schema(NAME, FILENAME, MIGRATIONS)
