"""The writer process, as the proxy drives it: a real child on a real file. It starts with the first batch,
answers each, survives its own errors, is started again when it died, ignores the signals a terminal or a service
manager sends its group, and ends when the database closes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from proxy.platform.sql import Statement
from proxy.platform.sqlite import Database, Migration
from proxy.platform.sqlite_writer import WriterProcess

MIGRATIONS = [Migration(1, "rows", ["CREATE TABLE rows (id INTEGER, name TEXT)",
                                    "CREATE TABLE seen (id TEXT PRIMARY KEY)",
                                    "CREATE TABLE sums (total INTEGER)"])]
COLUMNS = ("id", "name")
SUMS = Statement("INSERT INTO sums (total) SELECT COALESCE(SUM(id), 0) FROM batch_rows")


def once(batch: str) -> Statement:
    return Statement("INSERT INTO seen (id) VALUES (?) ON CONFLICT (id) DO NOTHING", (batch,))


def flat(first: int, count: int) -> list[object]:
    return [value for i in range(first, first + count) for value in (i, f"n{i}")]


def read(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database(tmp_path / "w.sqlite3", MIGRATIONS)
    await database.open()
    yield database
    await database.close()


def child(db: Database) -> asyncio.subprocess.Process:
    proc = db._writer._proc
    assert proc is not None and proc.returncode is None
    return proc


async def test_the_child_starts_with_the_first_batch_and_writes_it_in_many_statements(db: Database) -> None:
    assert db._writer._proc is None  # a database that never bulk-inserts never starts one
    count = 40_000
    assert await db.insert_rows("rows", COLUMNS, flat(0, count), then=[SUMS], once=once("b1")) is True
    assert count * len(COLUMNS) > 2 * db._writer._step  # three statements' worth
    assert read(db.path, "SELECT count(*), min(id), max(id), max(name) FROM rows") == [
        (count, 0, count - 1, max(f"n{i}" for i in range(count)))]
    assert read(db.path, "SELECT total FROM sums") == [(count * (count - 1) // 2,)]
    assert child(db).pid != os.getpid()


async def test_a_batch_retried_under_its_id_is_written_once(db: Database) -> None:
    assert await db.insert_rows("rows", COLUMNS, flat(0, 3), then=[SUMS], once=once("b1")) is True
    assert await db.insert_rows("rows", COLUMNS, flat(0, 3), then=[SUMS], once=once("b1")) is False
    assert read(db.path, "SELECT count(*) FROM rows") == [(3,)]
    assert read(db.path, "SELECT total FROM sums") == [(3,)]


async def test_an_error_in_the_child_is_raised_as_its_class_and_the_child_goes_on(db: Database) -> None:
    await db.insert_rows("rows", COLUMNS, flat(0, 1))
    first = child(db).pid
    with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
        await db.insert_rows("rows", COLUMNS, flat(1, 5), then=[Statement("DELETE FROM nowhere")], once=once("b2"))
    assert await db.insert_rows("rows", COLUMNS, flat(1, 1), once=once("b2")) is True  # nothing of b2 stayed
    assert child(db).pid == first and db._writer.starts == 1
    assert read(db.path, "SELECT id FROM rows ORDER BY id") == [(0,), (1,)]


async def test_a_child_that_died_between_batches_is_started_again(db: Database) -> None:
    await db.insert_rows("rows", COLUMNS, flat(0, 1))
    proc = child(db)
    proc.kill()
    await proc.wait()
    assert await db.insert_rows("rows", COLUMNS, flat(1, 1)) is True
    assert db._writer.starts == 2
    assert read(db.path, "SELECT count(*) FROM rows") == [(2,)]


async def test_a_child_dying_during_a_batch_fails_that_batch_and_its_retry_is_written_once(db: Database) -> None:
    rows = flat(0, 100_000)
    attempt = asyncio.ensure_future(db.insert_rows("rows", COLUMNS, rows, then=[SUMS], once=once("b1")))
    while db._writer._proc is None:
        await asyncio.sleep(0)
    db._writer._proc.kill()  # before it even greeted
    with pytest.raises(sqlite3.OperationalError, match=r"the SQLite writer process for .* failed"):
        await attempt
    assert await db.insert_rows("rows", COLUMNS, rows, then=[SUMS], once=once("b1")) is True
    assert await db.insert_rows("rows", COLUMNS, rows, then=[SUMS], once=once("b1")) is False
    assert read(db.path, "SELECT count(*) FROM rows") == [(100_000,)]
    assert db._writer.starts == 2


async def test_a_batch_cancelled_half_way_is_all_or_nothing_and_the_next_one_is_written(db: Database) -> None:
    attempt = asyncio.ensure_future(db.insert_rows("rows", COLUMNS, flat(0, 100_000), once=once("b1")))
    while db._writer._step == 0:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert db._writer._proc is None  # out of step: killed
    assert read(db.path, "SELECT count(*) FROM rows") in ([(0,)], [(100_000,)])
    assert await db.insert_rows("rows", COLUMNS, flat(0, 2), once=once("b2")) is True


async def test_the_child_ignores_interrupt_and_terminate(db: Database) -> None:
    await db.insert_rows("rows", COLUMNS, flat(0, 1))
    proc = child(db)
    assert os.getpgid(proc.pid) != os.getpgid(os.getpid())  # not in the terminal's group either
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGTERM)
    await asyncio.sleep(0.3)
    assert await db.insert_rows("rows", COLUMNS, flat(1, 1)) is True
    assert child(db) is proc and db._writer.starts == 1


async def test_closing_the_database_ends_the_child_after_its_last_batch(tmp_path: Path) -> None:
    db = Database(tmp_path / "w.sqlite3", MIGRATIONS)
    await db.open()
    await db.insert_rows("rows", COLUMNS, flat(0, 1))
    proc = child(db)
    await db.close()
    assert proc.returncode == 0
    with pytest.raises(RuntimeError, match="is not open"):
        await db.insert_rows("rows", COLUMNS, flat(1, 1))


async def test_a_database_that_could_not_open_at_start_is_migrated_before_its_first_batch(tmp_path: Path) -> None:
    (tmp_path / "later").write_text("a file where the folder goes")
    db = Database(tmp_path / "later" / "w.sqlite3", MIGRATIONS)
    try:
        with pytest.raises(OSError):
            await db.open()
        (tmp_path / "later").unlink()
        assert await db.insert_rows("rows", COLUMNS, flat(0, 1)) is True
        assert read(db.path, "SELECT count(*) FROM rows") == [(1,)]
    finally:
        await db.close()


async def test_stop_without_a_child_does_nothing(tmp_path: Path) -> None:
    writer = WriterProcess(tmp_path / "none.sqlite3")
    await writer.stop()
    assert writer.starts == 0
