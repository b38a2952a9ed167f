"""The PostgreSQL layer on a real server: migrations applied once under the advisory lock however many start
together, status that reads only, exclusive writes, placeholders, a database that is not there yet."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from proxy.monitoring.schema import SCHEMA as MONITORING
from proxy.platform.postgres import PostgresDatabase, job_key, lock_key, numbered, schema_of, status
from proxy.platform.sql import Migration, Statement
from proxy.probe.schema import SCHEMA as PROBE
from tests.support.servers import free_port


def test_placeholders_are_numbered_outside_quoted_text() -> None:
    assert numbered("SELECT ? + ?, 'a?b', 'it''s?' FROM t WHERE x = ?") == \
        "SELECT $1 + $2, 'a?b', 'it''s?' FROM t WHERE x = $3"
    assert numbered("SELECT 1") == "SELECT 1"


def test_owner_schemas_and_lock_keys() -> None:
    assert (schema_of("monitoring"), schema_of("probe")) == ("cachegate_monitoring", "cachegate_probe")
    with pytest.raises(ValueError):
        schema_of("Robert'); DROP TABLE x; --")
    assert lock_key("a") == lock_key("a") != lock_key("b")
    assert -(2**63) <= lock_key("cachegate:migrate:cachegate_probe") < 2**63


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    replicas = [PostgresDatabase(database_url, owner=MONITORING.name, migrations=MONITORING.migrations)
                for _ in range(6)]
    await asyncio.gather(*(db.open() for db in replicas))
    try:
        applied = [version for db in replicas for version in db.applied]
        assert sorted(applied) == [m.version for m in MONITORING.migrations]  # each version by exactly one
        rows = await replicas[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert rows == [(m.version,) for m in MONITORING.migrations]
    finally:
        await asyncio.gather(*(db.close() for db in replicas))


async def test_status_reads_only_and_owners_keep_apart(database_url: str) -> None:
    exists, rows = await status(database_url, "cachegate_probe", PROBE.migrations)
    assert (exists, [row["applied_at"] for row in rows]) == (False, [None])
    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT to_regnamespace('cachegate_probe')") is None  # nothing was created
    await conn.close()
    db = PostgresDatabase(database_url, owner=PROBE.name, migrations=PROBE.migrations)
    await db.open()
    await db.close()
    exists, rows = await status(database_url, "cachegate_probe", PROBE.migrations)
    assert exists and rows[0]["applied_at"] is not None
    assert (await status(database_url, "cachegate_monitoring", MONITORING.migrations))[0] is False


async def test_a_later_migration_is_applied_on_its_own_and_a_failing_one_not_at_all(database_url: str) -> None:
    first = [Migration(1, "one", ["CREATE TABLE a (x INTEGER)"])]
    db = PostgresDatabase(database_url, owner="steps", migrations=first)
    await db.open()
    await db.close()
    broken = [*first, Migration(2, "half", ["CREATE TABLE b (y INTEGER)", "CREATE TABLE b (y INTEGER)"])]
    db = PostgresDatabase(database_url, owner="steps", migrations=broken)
    with pytest.raises(asyncpg.DuplicateTableError):
        await db.open()
    fixed = [*first, Migration(2, "two", ["CREATE TABLE b (y INTEGER)"], postgres=["CREATE TABLE b (z BIGINT)"])]
    db = PostgresDatabase(database_url, owner="steps", migrations=fixed)
    await db.open()  # the failed attempt left nothing behind, and the next use tries again
    assert db.applied == [2]
    assert await db.fetch("SELECT column_name FROM information_schema.columns WHERE table_schema = 'cachegate_steps' "
                          "AND table_name = 'b'") == [("z",)]  # PostgreSQL's own statements
    await db.close()


async def test_an_exclusive_write_is_skipped_while_another_replica_runs_it(database_url: str) -> None:
    db = PostgresDatabase(database_url, owner=MONITORING.name, migrations=MONITORING.migrations)
    delete = [Statement("DELETE FROM usage WHERE ts < ?", (1.0,))]
    assert await db.write(delete, exclusive="usage-retention") == [0]
    other = await asyncpg.connect(database_url)
    async with other.transaction():  # another replica, in the middle of the same job
        await other.execute("SELECT pg_advisory_xact_lock($1)", job_key("cachegate_monitoring", "usage-retention"))
        assert await db.write(delete, exclusive="usage-retention") is None
        assert await db.write(delete) == [0]  # writes that are not exclusive go on
    await other.close()
    assert await db.write(delete, exclusive="usage-retention") == [0]
    await db.close()


async def test_a_database_that_does_not_answer_raises_and_is_tried_again() -> None:
    db = PostgresDatabase(f"postgresql://postgres:pw-secret@127.0.0.1:{free_port()}/none", owner="monitoring",
                          migrations=MONITORING.migrations, timeout=2.0)
    for _ in range(2):  # no pool is kept from a failed start: each use connects anew
        with pytest.raises(OSError):
            await db.fetch("SELECT 1")
    assert db.describe().startswith("postgresql://postgres:<redacted>@127.0.0.1:")
    await db.close()


async def test_the_usage_table_is_ready_to_become_a_hypertable(database_url: str) -> None:
    # TimescaleDB's rules (README, "Time series at scale"): a NOT NULL time column, no unique key without it, and
    # an immutable function from that column to a time type for time_partitioning_func
    db = PostgresDatabase(database_url, owner=MONITORING.name, migrations=MONITORING.migrations)
    assert await db.fetch("SELECT COUNT(*) FROM pg_index WHERE indrelid = 'cachegate_monitoring.usage'::regclass "
                          "AND indisunique") == [(0,)]
    assert await db.fetch("SELECT is_nullable FROM information_schema.columns WHERE table_schema = "
                          "'cachegate_monitoring' AND table_name = 'usage' AND column_name = 'ts'") == [("NO",)]
    assert await db.fetch("SELECT provolatile::text FROM pg_proc WHERE proname = 'usage_time'") == [("i",)]
    [(epoch,)] = await db.fetch("SELECT extract(epoch FROM usage_time(1700000000.5))")
    assert float(epoch) == 1700000000.5
    await db.close()
