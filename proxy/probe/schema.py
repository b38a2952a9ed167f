"""The probe's history database (``DATA_DIR/probe.sqlite3``, or the schema ``cachegate_probe`` at
``DATABASE_URL``): its tables, as versioned migrations.

The probe owns this schema; :class:`~proxy.platform.sqlite.Database` (or
:class:`~proxy.platform.postgres.PostgresDatabase`) applies it at start (forward only, recorded in
``schema_migrations``; ``cachegate db status`` lists it). Each migration is written once, as a function of
the engine's :class:`~proxy.platform.sql.Dialect` (a surrogate key's type, 8-byte floats, SQLite's
``WITHOUT ROWID``). Times are Unix seconds of the probe's clock.

- ``results``: one row per probe request (what was sent, what came back, the normalised cache figures
  next to the redacted raw usage), tied to its run by ``run_id`` (the correlation id every request of one
  run carries) and to its cycle by ``cycle_id``; ``estimated_tokens`` is what a request whose answer had no
  usage was charged instead (:mod:`proxy.probe.charge`);
- ``verdicts``: one row per model per run, the report's headline figures and the report itself;
- ``cycles``: one row per scheduler cycle (who ran it, how it ended, what it spent);
- ``ttl_state``: per model, the resumable TTL search and the step waiting for its gap to pass.
"""

from __future__ import annotations

from proxy.platform.sql import POSTGRES, SQLITE, Dialect, Migration, Schema

NAME = "probe"
FILENAME = "probe.sqlite3"


def _history(d: Dialect) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE results (
               id {d.key},
               ts {d.real} NOT NULL,
               cycle_id TEXT,
               run_id TEXT NOT NULL,
               source TEXT NOT NULL,
               model TEXT NOT NULL,
               test TEXT NOT NULL,
               step TEXT NOT NULL,
               role TEXT NOT NULL,
               stream INTEGER NOT NULL DEFAULT 0,
               hints TEXT NOT NULL DEFAULT '',
               status INTEGER NOT NULL,
               prompt_tokens INTEGER,
               cached_tokens INTEGER,
               write_tokens INTEGER,
               completion_tokens INTEGER,
               latency {d.real},
               ttft {d.real},
               error TEXT,
               request_hash TEXT NOT NULL,
               upstream_request_id TEXT,
               host TEXT,
               balance_usd {d.real},
               balance_diem {d.real},
               cost_usd {d.real},
               saved_usd {d.real},
               raw_usage TEXT
           )""",
        "CREATE INDEX results_ts ON results (ts)",
        "CREATE INDEX results_model_ts ON results (model, ts)",
        f"""CREATE TABLE verdicts (
               id {d.key},
               ts {d.real} NOT NULL,
               started_at {d.real} NOT NULL,
               cycle_id TEXT,
               run_id TEXT NOT NULL,
               model TEXT NOT NULL,
               verdict TEXT NOT NULL,
               hint TEXT,
               hit_ratio {d.real},
               cache_rate {d.real},
               min_prefix_tokens INTEGER,
               step_tokens INTEGER,
               ttl_lower {d.real},
               ttl_upper {d.real},
               speedup {d.real},
               contaminated INTEGER NOT NULL DEFAULT 0,
               advertised_caching INTEGER,
               drift TEXT,
               tokens_spent INTEGER NOT NULL DEFAULT 0,
               cost_usd {d.real},
               error TEXT,
               report TEXT NOT NULL
           )""",
        "CREATE INDEX verdicts_model_ts ON verdicts (model, ts)",
        "CREATE INDEX verdicts_ts ON verdicts (ts)",
        f"""CREATE TABLE cycles (
               id TEXT PRIMARY KEY,
               replica TEXT NOT NULL,
               trigger TEXT NOT NULL,
               started_at {d.real} NOT NULL,
               finished_at {d.real},
               status TEXT NOT NULL,
               reason TEXT,
               planned TEXT NOT NULL DEFAULT '[]',
               probed TEXT NOT NULL DEFAULT '[]',
               requests INTEGER NOT NULL DEFAULT 0,
               tokens INTEGER NOT NULL DEFAULT 0,
               cost_usd {d.real} NOT NULL DEFAULT 0
           )""",
        "CREATE INDEX cycles_started ON cycles (started_at)",
        f"""CREATE TABLE ttl_state (
               model TEXT PRIMARY KEY,
               updated_at {d.real} NOT NULL,
               state TEXT NOT NULL
           ){d.keyed}""",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "probe results, verdicts, cycles and TTL searches", _history(SQLITE), postgres=_history(POSTGRES)),
    # each model's latest verdict, and where its streak began, in a few steps of one index, not a scan of every
    # verdict (bench/probe_history_bench.py: the models route took 4.7 s at 833,333 verdicts without it)
    Migration(2, "verdicts by model and id", ("CREATE INDEX verdicts_model_id ON verdicts (model, id)",)),
    # what an answer without usage was charged instead of 0 (proxy/probe/charge.py): the budget sums it
    Migration(3, "estimated tokens of answers without usage", (
        "ALTER TABLE results ADD COLUMN estimated_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE cycles ADD COLUMN estimated_tokens INTEGER NOT NULL DEFAULT 0")),
)

SCHEMA = Schema(NAME, FILENAME, MIGRATIONS)
