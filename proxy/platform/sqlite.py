"""The one SQLite layer: a database file, one connection owned by one worker thread, versioned migrations.

Every statement runs on that thread (``await db.run(fn)``), so the event loop never waits on disk and no
two writers race. Each owner of a file (monitoring now, the probe next) registers its schema as a list of
:class:`Migration` s; they are applied in order, once each, forward only, each in its own transaction, and
recorded in ``schema_migrations`` (version, description, applied_at). :func:`status` reads that table
without applying anything (``cachegate db status``).

A *disposable* database (a cache: losing it costs misses, never data) is checked when it opens; a file that
is not a database, or a damaged one (truncated, overwritten), is moved aside (``<name>.corrupt-<time>``, with
its ``-wal``/``-shm``) and started afresh with a warning, at open or when a statement meets the damage later,
so a bad file never turns into a crash loop. Other databases fail loudly, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger("cachegate.sqlite")

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


def is_corruption(exc: BaseException) -> bool:
    """A damaged or foreign file (``file is not a database``, ``database disk image is malformed``): sqlite3
    raises these as plain ``DatabaseError``; its subclasses (locked, integrity, no such table) are not damage."""
    return type(exc) is sqlite3.DatabaseError


class Database:
    def __init__(self, path: Path, migrations: Sequence[Migration], *, disposable: bool = False) -> None:
        self.path = path
        self.migrations = tuple(migrations)
        self.disposable = disposable
        self.set_aside: list[Path] = []  # files moved aside because they were damaged (disposable only)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level="DEFERRED")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            if self.disposable:
                verdict = conn.execute("PRAGMA quick_check").fetchone()
                if verdict is None or verdict[0] != "ok":
                    raise sqlite3.DatabaseError(f"quick_check: {verdict[0] if verdict else 'no answer'}")
            migrate(conn, self.migrations)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if not (self.disposable and is_corruption(exc)):
                raise
            self._move_aside(exc)
            self._conn = self._connect()

    def _move_aside(self, exc: BaseException) -> None:
        """Close the damaged file and move it (and its WAL and shared-memory files) out of the way."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                source.replace(aside.with_name(aside.name + suffix))
        self.set_aside.append(aside)
        logger.warning("%s is damaged (%s): moved aside to %s, starting with an empty file", self.path, exc, aside)

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
            try:
                return fn(self._conn)
            except sqlite3.DatabaseError as exc:
                if self.disposable and is_corruption(exc):
                    self._move_aside(exc)  # the next call opens a fresh file; this one fails (open)
                raise

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
