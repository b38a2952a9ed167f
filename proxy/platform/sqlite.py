"""The one SQLite layer: a database file, one connection owned by one worker thread, versioned migrations.

Every statement runs on that thread (``await db.run(fn)``), so the event loop never waits on disk and no
two writers race. Each owner of a file (monitoring now, the probe next) registers its schema as a list of
:class:`Migration` s; they are applied in order, once each, forward only, each in its own transaction, and
recorded in ``schema_migrations`` (version, description, applied_at). :func:`status` reads that table
without applying anything (``cachegate db status``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_LEDGER_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at REAL NOT NULL)")


@dataclass(frozen=True)
class Migration:
    """One step of a schema; append new versions, never edit applied ones."""

    version: int
    description: str
    statements: Sequence[str]


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations ``conn`` lacks, each in its own transaction; returns the versions applied."""
    versions = [migration.version for migration in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"migration versions must increase: {versions}")
    conn.execute(_LEDGER_TABLE)
    conn.commit()
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        # One explicit transaction: a migration is applied entirely or not at all. (sqlite3 opens transactions
        # implicitly only before INSERT/UPDATE/DELETE, so a CREATE would otherwise commit on its own.)
        conn.execute("BEGIN")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                         (migration.version, migration.description, time.time()))
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        applied.append(migration.version)
    return applied


def status(path: Path, migrations: Sequence[Migration]) -> list[dict[str, object]]:
    """Each migration with when it was applied (``None``: pending); reads only, creates nothing."""
    applied: dict[int, float] = {}
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            applied = dict(conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall())
        except sqlite3.OperationalError:  # no table yet: nothing applied
            pass
        finally:
            conn.close()
    return [{"version": m.version, "description": m.description, "applied_at": applied.get(m.version)}
            for m in migrations]


class Database:
    def __init__(self, path: Path, migrations: Sequence[Migration]) -> None:
        self.path = path
        self.migrations = tuple(migrations)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level="DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn, self.migrations)
        self._conn = conn

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cachegate-sqlite")
        await self.run(lambda _: None)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread (opening the file first if needed)."""
        if self._executor is None:
            raise RuntimeError(f"the database {self.path} is not open")

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
