"""The one SQLite layer: a database file, one connection owned by one worker thread, versioned migrations.

Every statement runs on that thread (``await db.run(fn)``), so the event loop never waits on disk, except
bulk inserts (``insert_rows``: the usage history's batches), which a writer process of the database's
own runs (:mod:`proxy.platform.sqlite_writer`): binding their values on a thread of this process would
fight the event loop for the GIL. SQLite's lock on the file keeps the two writers apart.

Each owner of a file (monitoring, the probe) registers its schema as a list of :class:`Migration` s; they are
applied in order, once each, forward only, each in its own transaction, and recorded in ``schema_migrations``
(version, description, applied_at). :func:`status` reads that table without applying anything (``cachegate db
status``). The same lists serve PostgreSQL (:mod:`proxy.platform.postgres`): a migration names the statements
PostgreSQL runs instead only when they must differ. :class:`Database` also speaks the engine-neutral surface
of :mod:`proxy.platform.sql` (``fetch``, ``write``, ``insert_rows``) that the stores written once over both
engines use.

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
from pathlib import Path
from typing import Any, TypeVar

from proxy.platform.sql import SQLITE, Dialect, Migration, Statement, check_versions
from proxy.platform.sqlite_child import connect, run_statement
from proxy.platform.sqlite_writer import WriterProcess

__all__ = ["Database", "Migration", "check_versions", "migrate", "status"]

T = TypeVar("T")

logger = logging.getLogger("cachegate.sqlite")

_LEDGER_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at REAL NOT NULL)")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations ``conn`` lacks, each in its own transaction; returns the versions applied."""
    check_versions(migrations)
    conn.execute(_LEDGER_TABLE)
    conn.commit()
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        # One explicit transaction: a migration is applied entirely or not at all. (sqlite3 opens transactions
        # implicitly only before INSERT/UPDATE/DELETE, so a CREATE would otherwise commit on its own.) IMMEDIATE
        # takes the write lock first, then the ledger is read again: another process opening the same file at
        # the same moment (the workers of ``cachegate serve --workers N`` on one DATA_DIR) may have applied
        # this version since ``done`` was read, and applying it twice would fail ("table already exists").
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone():
                conn.rollback()
                continue
            for statement in migration.for_engine("sqlite"):
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


def _run(conn: sqlite3.Connection, statement: Statement) -> int:
    return run_statement(conn, statement.sql, statement.params, statement.many)


def is_corruption(exc: BaseException) -> bool:
    """A damaged or foreign file (``file is not a database``, ``database disk image is malformed``): sqlite3
    raises these as plain ``DatabaseError``; its subclasses (locked, integrity, no such table) are not damage."""
    return type(exc) is sqlite3.DatabaseError


class Database:
    dialect: Dialect = SQLITE

    def __init__(self, path: Path, migrations: Sequence[Migration], *, disposable: bool = False) -> None:
        self.path = path
        self.migrations = tuple(migrations)
        self.disposable = disposable
        self.set_aside: list[Path] = []  # files moved aside because they were damaged (disposable only)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._writer = WriterProcess(path)  # bulk inserts: started with the first one

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path)
        try:
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

    # -- the engine-neutral surface (proxy.platform.sql.SqlDatabase) --------------------------------

    def describe(self) -> str:
        return str(self.path)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.run(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    async def write(self, statements: Sequence[Statement], *, exclusive: str | None = None) -> list[int] | None:
        # One connection on one thread, and SQLite's own lock on the file between processes: every write is
        # exclusive already.
        def go(conn: sqlite3.Connection) -> list[int]:
            with conn:
                return [_run(conn, statement) for statement in statements]

        return await self.run(go)

    async def insert_rows(self, table: str, columns: Sequence[str], flat: list[Any],
                          then: Sequence[Statement] = (), once: Statement | None = None) -> bool:
        # In the writer process (proxy.platform.sqlite_child says why), on a file this thread has opened and
        # migrated: a database that could not open at start is opened (and migrated) here first.
        if self._conn is None:
            await self.run(lambda _: None)
        return await self._writer.insert(table, columns, flat, then, once)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._writer.stop()  # after its last batch

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None
