"""The SQLite writer process's own parts, in this process: one batch's transaction and the framed conversation,
with exact values."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from proxy.platform import sqlite_child
from proxy.platform.sqlite_child import MAX_VALUES, insert_batch, insert_sql, read_frame, serve, write_frame

COLUMNS = ("id", "name")
ONCE = ("INSERT INTO seen (id) VALUES (?) ON CONFLICT (id) DO NOTHING", ("b1",), False)
SUMS = ("INSERT INTO sums (total) SELECT COALESCE(SUM(id), 0) FROM batch_rows", (), False)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite_child.connect(tmp_path / "w.sqlite3")
    conn.executescript("CREATE TABLE rows (id INTEGER, name TEXT); CREATE TABLE seen (id TEXT PRIMARY KEY);"
                       "CREATE TABLE sums (total INTEGER);")
    return conn


def test_the_connection_settings(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    assert conn.execute("PRAGMA temp_store").fetchone() == (2,)  # MEMORY


def test_statements_bind_whole_rows_up_to_the_limit(conn: sqlite3.Connection) -> None:
    limit = min(MAX_VALUES, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    assert sqlite_child.values_per_statement(conn, 15) == limit // 15 * 15
    assert sqlite_child.values_per_statement(conn, 1) == limit
    assert insert_sql("t", ("a", "b"), 2) == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"


def test_a_batch_is_inserted_and_its_sums_added_in_one_transaction(conn: sqlite3.Connection) -> None:
    assert insert_batch(conn, "rows", COLUMNS, iter([[1, "a", 2, "b"], [3, "c"]]), [SUMS], ONCE) is True
    assert conn.execute("SELECT id, name FROM rows ORDER BY id").fetchall() == [(1, "a"), (2, "b"), (3, "c")]
    assert conn.execute("SELECT total FROM sums").fetchall() == [(6,)]
    assert conn.execute("SELECT count(*) FROM batch_rows").fetchone() == (0,)  # emptied for the next batch
    assert not conn.in_transaction


def test_a_batch_applied_before_writes_nothing_and_its_chunks_are_still_read(conn: sqlite3.Connection) -> None:
    insert_batch(conn, "rows", COLUMNS, iter([[1, "a"]]), [SUMS], ONCE)
    chunks = iter([[5, "e"], [6, "f"]])
    assert insert_batch(conn, "rows", COLUMNS, chunks, [SUMS], ONCE) is False
    assert list(chunks) == []
    assert conn.execute("SELECT id FROM rows").fetchall() == [(1,)]
    assert conn.execute("SELECT total FROM sums").fetchall() == [(1,)]
    assert not conn.in_transaction


def test_without_work_on_the_batch_rows_go_straight_in(conn: sqlite3.Connection) -> None:
    assert insert_batch(conn, "rows", COLUMNS, iter([[7, "g"]]), [], None) is True
    assert conn.execute("SELECT id, name FROM rows").fetchall() == [(7, "g")]
    assert conn.execute("SELECT count(*) FROM sqlite_temp_master WHERE name = 'batch_rows'").fetchone() == (0,)


def test_a_failing_statement_rolls_the_whole_batch_back(conn: sqlite3.Connection) -> None:
    broken = ("INSERT INTO nowhere SELECT * FROM batch_rows", (), False)
    with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
        insert_batch(conn, "rows", COLUMNS, iter([[1, "a"]]), [broken], ONCE)
    assert conn.execute("SELECT count(*) FROM rows").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM seen").fetchone() == (0,)  # the id too: a retry writes it
    assert not conn.in_transaction


def _frames(*values: object) -> io.BytesIO:
    stream = io.BytesIO()
    for value in values:
        write_frame(stream, value)
    stream.seek(0)
    return stream


def _replies(out: io.BytesIO) -> list[object]:
    out.seek(0)
    replies = []
    while True:
        try:
            replies.append(read_frame(out))
        except EOFError:
            return replies


def test_the_conversation_greets_answers_each_job_and_stays_in_step_after_an_error(conn: sqlite3.Connection) -> None:
    broken = ("INSERT INTO nowhere VALUES (1)", (), False)
    jobs = _frames(("insert", "rows", COLUMNS, [SUMS], ONCE, 2), [1, "a"], [2, "b"],
                   ("insert", "rows", COLUMNS, [broken], None, 1), [9, "z"],  # fails: its chunk is read all the same
                   ("insert", "rows", COLUMNS, [SUMS], ONCE, 1), [3, "c"],  # the same id: applied already
                   ("insert", "rows", COLUMNS, [], None, 1), [4, "d"])
    out = io.BytesIO()
    serve(conn, jobs, out)
    limit = min(MAX_VALUES, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    assert _replies(out) == [("ready", limit), ("ok", True), ("error", "OperationalError", "no such table: nowhere"),
                             ("ok", False), ("ok", True)]
    assert conn.execute("SELECT id FROM rows ORDER BY id").fetchall() == [(1,), (2,), (4,)]


def test_a_stream_cut_half_way_through_a_batch_commits_nothing(conn: sqlite3.Connection) -> None:
    jobs = _frames(("insert", "rows", COLUMNS, [SUMS], ONCE, 3), [1, "a"])
    with pytest.raises(EOFError):
        serve(conn, jobs, io.BytesIO())
    assert conn.execute("SELECT count(*) FROM rows").fetchone() == (0,)
    assert not conn.in_transaction


def test_a_frame_cut_short_is_the_end_of_the_stream() -> None:
    whole = _frames([1, 2, 3]).getvalue()
    with pytest.raises(EOFError):
        read_frame(io.BytesIO(whole[:-1]))
    with pytest.raises(EOFError):
        read_frame(io.BytesIO(whole[:2]))
