"""The monitoring database (``DATA_DIR/monitoring.sqlite3``): usage history and the savings ledger.

Monitoring owns this file's schema; :class:`~proxy.platform.sqlite.Database` applies it.
"""

from __future__ import annotations

from proxy.platform.sqlite import Migration

FILENAME = "monitoring.sqlite3"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "usage history", (
        """CREATE TABLE usage (
               id INTEGER PRIMARY KEY,
               ts REAL NOT NULL,
               request_id TEXT NOT NULL,
               route TEXT NOT NULL,
               model TEXT,
               prompt_tokens INTEGER NOT NULL DEFAULT 0,
               completion_tokens INTEGER NOT NULL DEFAULT 0,
               cached_tokens INTEGER NOT NULL DEFAULT 0,
               outcome TEXT NOT NULL,
               tier TEXT,
               status INTEGER NOT NULL,
               latency_ms REAL NOT NULL,
               stream INTEGER NOT NULL DEFAULT 0,
               api_key_hash TEXT,
               cost_usd REAL NOT NULL DEFAULT 0,
               saved_usd REAL NOT NULL DEFAULT 0
           )""",
        # one index: a second one (model, ts) doubled the cost of each insert; queries scan the time range
        "CREATE INDEX usage_ts ON usage (ts)",
    )),
    Migration(2, "savings ledger", (
        """CREATE TABLE ledger (
               scope TEXT NOT NULL,
               name TEXT NOT NULL,
               value REAL NOT NULL DEFAULT 0,
               PRIMARY KEY (scope, name)
           ) WITHOUT ROWID""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )),
)
