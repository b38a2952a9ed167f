"""The SQLite writer process: bulk inserts (:meth:`Database.insert_rows <proxy.platform.sqlite.Database.insert_rows>`)
run here, in a process of their own, not on a thread of the proxy.

Why a process. A thread shares the event loop's GIL, and binding a batch's values needs it. While the loop is
busy it gives the GIL up at every turn (``epoll_wait``) and takes it straight back; a thread waiting for it is
woken each time, loses the race, and sleeps again, and each wake-up costs the loop a ``futex`` call.
``python -m bench.usage_writer_bench`` (a loop of small Python tasks, a flush of 20,000 usage rows a second,
taking turns): on a thread the flush took 1.2 s, with 26,000 wake-ups, and the loop ran at 0.67 of its speed
without it; through this process the flush took 78 ms and the loop ran at 0.99. Marshalling the rows costs
the loop about 3 ms.

This file is both the child's program and the parts both sides share, and imports the standard library only:
the parent starts it by its path (``python .../sqlite_child.py DB_PATH``), so it never depends on how the proxy
was put on ``sys.path``. It ignores SIGINT and SIGTERM (a terminal's Ctrl-C or a service manager's stop reaches
the whole process group): it ends when its input closes, which is when the proxy closes the database or dies,
so the last flush at shutdown is still written.

The conversation, over stdin/stdout, in frames (:func:`write_frame`: a 4-byte little-endian length, then
:mod:`marshal` data; marshal is the fastest of the standard serialisers for flat lists of numbers and
strings, and both ends are this same interpreter):

- the child first sends ``("ready", max_values)``: its build's limit of values a statement may bind;
- the parent sends ``("insert", table, columns, then, once, chunks)`` and then ``chunks`` frames of values;
  ``then`` is a list and ``once`` a statement or ``None``, each statement ``(sql, params, many)``;
- the child answers ``("ok", applied)`` or ``("error", exception class name, message)``, always
  after it has read every chunk, so the stream stays in step whatever happened.
"""

from __future__ import annotations

import marshal
import signal
import sqlite3
import struct
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

#: Values bound per multi-row INSERT at most: SQLite's default limit on a statement's parameters since 3.32 (a
#: build may allow more, Debian's 250,000; one with less is obeyed). Binding a statement holds this process's
#: thread only; larger statements were not measured.
MAX_VALUES = 32_766
_HEAD = struct.Struct("<I")


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the settings every connection to cachegate's files uses (both processes)."""
    conn = sqlite3.connect(path, isolation_level="DEFERRED")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA temp_store=MEMORY")  # insert_rows' batch tables
    except BaseException:
        conn.close()
        raise
    return conn


def values_per_statement(conn: sqlite3.Connection, columns: int) -> int:
    """How many values one INSERT binds: whole rows, at most :data:`MAX_VALUES` and the build's own limit."""
    rows = max(1, min(MAX_VALUES, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) // columns)
    return rows * columns


def insert_sql(table: str, columns: Sequence[str], rows: int) -> str:
    values = "(" + ", ".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([values] * rows)


def run_statement(conn: sqlite3.Connection, sql: str, params: Sequence[Any], many: bool) -> int:
    if many:
        conn.executemany(sql, params)
        return len(params)
    return conn.execute(sql, tuple(params)).rowcount


Statement = tuple[str, Sequence[Any], bool]  # sql, params, many


def insert_batch(conn: sqlite3.Connection, table: str, columns: Sequence[str], chunks: Iterable[list[Any]],
                 then: Sequence[Statement], once: Statement | None) -> bool:
    """One transaction: ``once`` (no row changed: applied already, ``False``), the rows, then ``then`` over
    them (the rows go through the temporary ``batch_<table>`` first when there is a ``then``). ``chunks`` is
    consumed to its end in every case. ``IMMEDIATE``: the write lock is taken (waiting as long as
    ``busy_timeout``) before anything is read, so another writer's commit cannot make it fail half-way."""
    names = ", ".join(columns)
    batch = f"batch_{table}"
    into = batch if then else table
    applied = True
    conn.execute("BEGIN IMMEDIATE")
    try:
        if once is not None and not run_statement(conn, *once):
            applied = False
        elif then:
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {batch} AS SELECT {names} FROM main.{table} WHERE 0")
        for chunk in chunks:
            if applied and chunk:
                conn.execute(insert_sql(into, columns, len(chunk) // len(columns)), chunk)
        if applied and then:
            conn.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM {batch}")
            for statement in then:
                run_statement(conn, *statement)
            conn.execute(f"DELETE FROM {batch}")
    except BaseException:
        conn.rollback()
        raise
    if applied:
        conn.commit()
    else:
        conn.rollback()
    return applied


def write_frame(out: BinaryIO, value: Any) -> None:
    data = marshal.dumps(value)
    out.write(_HEAD.pack(len(data)) + data)
    out.flush()


def read_frame(source: BinaryIO) -> Any:
    """The next frame's value; ``EOFError`` when the stream ends."""
    head = source.read(_HEAD.size)
    if len(head) < _HEAD.size:
        raise EOFError
    (size,) = _HEAD.unpack(head)
    data = source.read(size)
    if len(data) < size:
        raise EOFError
    return marshal.loads(data)


def _chunks(source: BinaryIO, count: int) -> Iterable[list[Any]]:
    for _ in range(count):
        yield read_frame(source)


def serve(conn: sqlite3.Connection, source: BinaryIO, out: BinaryIO) -> None:
    """Answer jobs until the input ends."""
    write_frame(out, ("ready", values_per_statement(conn, 1)))
    while True:
        try:
            kind, table, columns, then, once, count = read_frame(source)
        except EOFError:
            return
        assert kind == "insert", kind
        chunks = _chunks(source, count)
        try:
            reply: tuple[Any, ...] = ("ok", insert_batch(conn, table, columns, chunks, then, once))
        except sqlite3.Error as exc:
            for _ in chunks:  # the rest of this job, unread: the stream stays in step
                pass
            reply = ("error", type(exc).__name__, str(exc))
        write_frame(out, reply)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = connect(sys.argv[1])
    try:
        serve(conn, sys.stdin.buffer, sys.stdout.buffer)
    except EOFError:
        pass  # the input ended half-way through a batch (the proxy died or gave up on it): not committed
    finally:
        conn.close()


if __name__ == "__main__":
    main()
