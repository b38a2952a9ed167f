"""PostgreSQL for history that replicas share (``DATABASE_URL``): an asyncpg pool per owner, the owners'
migrations applied once under an advisory lock.

Each owner of a SQLite file under DATA_DIR (monitoring, the probe) gets a schema of its own in the one
database (``cachegate_monitoring``, ``cachegate_probe``), with its own ``schema_migrations``, so the same
:class:`~proxy.platform.sqlite.Migration` lists serve both engines unchanged. Replicas that start together
all try to migrate: each takes ``pg_advisory_lock`` on the owner's key first, so one applies what is
pending while the others wait, then find nothing left to do.

Nothing connects until the first use, and a failed connection or migration is tried again on the next use:
a database that is down at start (or goes down later) costs the callers an exception each time, and the
stores that write in the background keep their rows until it is back. Every call is bounded by
``DATABASE_TIMEOUT`` as a whole (:meth:`PostgresDatabase._bounded`), also against a server that hangs (stopped,
swapping, a network that drops packets): asyncpg bounds each statement, but then waits without a bound for the
hung server to acknowledge the cancel, in the rollback and in the pool's release. Statements are written
with ``?`` placeholders, as for SQLite, and numbered here.

asyncpg was chosen over psycopg 3 by ``bench/postgres_driver_bench.py``: see the README's monitoring section.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from proxy.platform.sql import POSTGRES, Dialect, Migration, Statement, batch_table, check_versions
from proxy.redaction import redact_url

logger = logging.getLogger("cachegate.postgres")

POOL_SIZE = 4  # a background writer and a few readers per owner: the dashboard, /metrics/usage, the probe API
_LEDGER_TABLE = ("CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?")
T = TypeVar("T")


def schema_of(owner: str) -> str:
    """The PostgreSQL schema an owner's tables live in."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", owner):
        raise ValueError(f"not a plain lower-case name: {owner!r}")
    return f"cachegate_{owner}"


def lock_key(name: str) -> int:
    """The 64-bit advisory-lock key of ``name`` (the same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def job_key(schema: str, job: str) -> int:
    """The advisory-lock key an exclusive write of ``job`` (``usage-retention``) takes in ``schema``."""
    return lock_key(f"cachegate:{schema}:{job}")


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (a ``?`` inside a quoted literal is left alone)."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() != "?":
            return match.group()
        count += 1
        return f"${count}"

    return _QUOTED_OR_MARK.sub(number, sql)


def _rowcount(status: str) -> int:
    """The row count of a command tag (``DELETE 3``, ``INSERT 0 1``, ``UPDATE 0``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def migrate(conn: asyncpg.Connection, schema: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations ``schema`` lacks, each in its own transaction, under the schema's advisory lock;
    returns the versions this call applied."""
    check_versions(migrations)
    key = lock_key(f"cachegate:migrate:{schema}")
    await conn.execute("SELECT pg_advisory_lock($1)", key)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(_LEDGER_TABLE.format(schema=schema))
        done = {row[0] for row in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            async with conn.transaction():
                for statement in migration.for_engine("postgres"):
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {schema}.schema_migrations (version, description, applied_at) "
                                   "VALUES ($1, $2, $3)", migration.version, migration.description, time.time())
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def status(url: str, schema: str, migrations: Sequence[Migration], *,
                 timeout: float = 5.0) -> tuple[bool, list[dict[str, object]]]:
    """(the schema exists?, each migration with when it was applied or ``None``); reads only."""
    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.schema_migrations")
        applied: dict[int, float] = {}
        if exists:
            applied = {row[0]: row[1] for row in
                       await conn.fetch(f"SELECT version, applied_at FROM {schema}.schema_migrations")}
    finally:
        await conn.close()
    return bool(exists), [{"version": m.version, "description": m.description, "applied_at": applied.get(m.version)}
                          for m in migrations]


class PostgresDatabase:
    dialect: Dialect = POSTGRES

    def __init__(self, url: str, *, owner: str, migrations: Sequence[Migration], timeout: float = 5.0,
                 pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.schema = schema_of(owner)
        self.migrations = tuple(migrations)
        self.timeout = timeout
        self.pool_size = pool_size
        self.applied: list[int] = []  # the versions this process applied (tests: replicas migrate once)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._abandoned: set[asyncio.Task[Any]] = set()  # calls given up on, still cleaning up: kept from the GC

    def describe(self) -> str:
        return f"{redact_url(self.url)} (schema {self.schema})"

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.url, min_size=0, max_size=self.pool_size, timeout=self.timeout,
                    command_timeout=self.timeout, max_inactive_connection_lifetime=60.0,
                    server_settings={"search_path": self.schema, "application_name": "cachegate"})
                try:
                    async with pool.acquire() as conn:
                        # migrations may wait for another replica's: bounded by more than one call
                        self.applied = await asyncio.wait_for(migrate(conn, self.schema, self.migrations),
                                                              max(60.0, self.timeout))
                except BaseException:
                    pool.terminate()  # not close(): it waits for the server, which may be what hangs
                    raise
                if self.applied:
                    logger.info("%s: applied migrations %s", self.describe(), self.applied)
                self._pool = pool
        assert self._pool is not None
        return self._pool

    async def open(self) -> None:
        await self._ready()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.timeout)
            except Exception:
                pool.terminate()

    async def _bounded(self, call: Callable[[], Awaitable[T]], *, steps: int = 1) -> T:
        """``call()`` (take a connection, connecting if need be, and use it) within ``steps`` timeouts, or
        ``TimeoutError``. A transaction counts its statements, BEGIN and COMMIT as steps: each one may take the
        timeout, so a big batch written after an outage on a slow server is not cut off again at each attempt.

        The call runs as a task of its own. When time is up (or the caller is cancelled: ``/health``'s own bound)
        it is cancelled but not waited for: asyncpg's cleanup after a cancel (the rollback, the release of the
        connection) waits for the server, and a hung server would hold the caller until it resumes. The task
        ends once the server answers or the connection is closed; a transaction it had open is rolled back,
        unless its COMMIT had already been sent (then it may be applied: the caller, told it failed, cannot
        know; a batch written by :meth:`insert_rows` with ``once`` is therefore not applied again when retried)."""
        async def run() -> T:
            return await call()

        task = asyncio.get_running_loop().create_task(run())
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout * steps)
        except BaseException:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise TimeoutError(f"PostgreSQL did not answer within {self.timeout * steps:g}s")
        return task.result()

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: not logged

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        pool = await self._ready()
        return await self._bounded(lambda: self._fetch(pool, sql, params))

    async def _fetch(self, pool: asyncpg.Pool, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with pool.acquire(timeout=self.timeout) as conn:
            return [tuple(row) for row in await conn.fetch(numbered(sql), *params)]

    async def write(self, statements: Sequence[Statement], *, exclusive: str | None = None) -> list[int] | None:
        pool = await self._ready()
        return await self._bounded(lambda: self._write(pool, statements, exclusive), steps=len(statements) + 3)

    async def _write(self, pool: asyncpg.Pool, statements: Sequence[Statement],
                     exclusive: str | None) -> list[int] | None:
        async with pool.acquire(timeout=self.timeout) as conn, conn.transaction():
            lock = job_key(self.schema, exclusive) if exclusive is not None else None
            if lock is not None and not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock):
                return None  # another replica runs it now
            return [await self._run(conn, statement) for statement in statements]

    @staticmethod
    async def _run(conn: asyncpg.Connection, statement: Statement) -> int:
        if statement.many:
            await conn.executemany(numbered(statement.sql), statement.params)
            return len(statement.params)
        return _rowcount(await conn.execute(numbered(statement.sql), *statement.params))

    async def insert_rows(self, table: str, columns: Sequence[str], flat: list[Any],
                          then: Sequence[Statement] = (), once: Statement | None = None) -> bool:
        pool = await self._ready()
        return await self._bounded(lambda: self._insert_rows(pool, table, columns, flat, then, once),
                                   steps=len(then) + 7)

    async def _insert_rows(self, pool: asyncpg.Pool, table: str, columns: Sequence[str], flat: list[Any],
                           then: Sequence[Statement], once: Statement | None) -> bool:
        width = len(columns)
        records = [tuple(flat[i:i + width]) for i in range(0, len(flat), width)]
        names = ", ".join(columns)
        batch = batch_table(table)
        async with pool.acquire(timeout=self.timeout) as conn, conn.transaction():
            # an attempt whose answer was lost may still be in flight (given up on, its COMMIT sent): the id's
            # unique key makes this wait for it, and then find the id if it committed
            if once is not None and not await self._run(conn, once):
                return False  # applied already
            if not then:
                await conn.copy_records_to_table(table, records=records, columns=list(columns),
                                                 schema_name=self.schema)
                return True
            # the batch table lives as long as the connection, and empties at each commit
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {batch} ON COMMIT DELETE ROWS AS "
                               f"SELECT {names} FROM {self.schema}.{table} WITH NO DATA")
            await conn.copy_records_to_table(batch, records=records, columns=list(columns))
            await conn.execute(f"INSERT INTO {self.schema}.{table} ({names}) SELECT {names} FROM {batch}")
            for statement in then:
                await self._run(conn, statement)
        return True
