"""The SQLite layer: versioned migrations applied once, in order, each in one transaction; status reads only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy.monitoring.schema import MIGRATIONS
from proxy.platform.sqlite import Database, Migration, migrate, status


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.sqlite3")
    assert migrate(conn, MIGRATIONS) == [migration.version for migration in MIGRATIONS]
    assert migrate(conn, MIGRATIONS) == []
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [1, 2, 3, 4]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"usage", "ledger", "meta", "usage_hourly", "usage_batches", "schema_migrations"} <= tables


def test_a_later_migration_is_applied_on_its_own(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.sqlite3")
    first = [Migration(1, "one", ["CREATE TABLE a (x INTEGER)"])]
    assert migrate(conn, first) == [1]
    assert migrate(conn, [*first, Migration(2, "two", ["CREATE TABLE b (y INTEGER)"])]) == [2]


def test_a_failing_migration_is_rolled_back_entirely(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.sqlite3")
    broken = [Migration(1, "half", ["CREATE TABLE a (x INTEGER)", "CREATE TABLE a (x INTEGER)"])]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'a'").fetchone() == (0,)


class AppliedMeanwhile(tuple[Migration, ...]):
    """Migrations that another connection applies between ``migrate`` reading which versions are done (its first
    pass over the list) and applying them (its second): two workers opening one fresh file at the same moment."""

    other: sqlite3.Connection
    passes = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.passes += 1
        if self.passes == 2:
            migrate(self.other, tuple(self))
        return super().__iter__()


def test_a_migration_another_process_applied_meanwhile_is_skipped(tmp_path: Path) -> None:
    mine, theirs = sqlite3.connect(tmp_path / "m.sqlite3"), sqlite3.connect(tmp_path / "m.sqlite3")
    migrations = AppliedMeanwhile(MIGRATIONS)
    migrations.other = theirs
    assert migrate(mine, migrations) == []  # no "table usage already exists": the other process applied both
    assert migrations.passes >= 2
    assert mine.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(MIGRATIONS),)


def test_versions_must_increase(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.sqlite3")
    with pytest.raises(ValueError, match="increase"):
        migrate(conn, [Migration(2, "b", []), Migration(1, "a", [])])


async def test_status_shows_applied_and_pending_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    assert [row["applied_at"] for row in status(path, MIGRATIONS)] == [None] * 4
    assert not path.exists()  # reading the status creates nothing
    db = Database(path, MIGRATIONS[:1])
    await db.open()
    await db.close()
    rows = status(path, MIGRATIONS)
    assert [(row["version"], row["description"]) for row in rows] == [
        (1, "usage history"), (2, "savings ledger"), (3, "hourly sums of the usage history"),
        (4, "ids of the usage batches applied, so a retried one is applied once")]
    assert rows[0]["applied_at"] is not None and rows[1]["applied_at"] is None
