"""The monitoring SQLite file (``DATA_DIR/monitoring.sqlite3``): one connection owned by one worker thread.

Every statement runs on that thread (``await db.run(fn)``), so the event loop never waits on disk and no
two writers race. The schema is versioned: :data:`MIGRATIONS` are applied in order, once each, and
recorded in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

FILENAME = "monitoring.sqlite3"

#: (version, description, statements); append new versions, never edit applied ones
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "usage history", [
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
    ]),
    (2, "savings ledger", [
        """CREATE TABLE ledger (
               scope TEXT NOT NULL,
               name TEXT NOT NULL,
               value REAL NOT NULL DEFAULT 0,
               PRIMARY KEY (scope, name)
           ) WITHOUT ROWID""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]),
]


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations ``conn`` lacks, each in its own transaction; returns the versions applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at REAL NOT NULL)")
    conn.commit()
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        with conn:  # one transaction: a migration is applied entirely or not at all
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                         (version, description, time.time()))
        applied.append(version)
    return applied


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level="DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn)
        self._conn = conn

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cachegate-sqlite")
        await self.run(lambda _: None)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread (opening the file first if needed)."""
        if self._executor is None:
            raise RuntimeError("the monitoring database is not open")

        def call() -> T:
            if self._conn is None:
                self._open()
            assert self._conn is not None
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        if self._executor is None:
            return

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None
