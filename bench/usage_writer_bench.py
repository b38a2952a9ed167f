"""What a usage flush costs the event loop: the same batch written on a thread of this process, as the proxy
did, and by the SQLite writer process, as it does now (``proxy/platform/sqlite_child.py`` says why).

    python -m bench.usage_writer_bench [--rows 20000] [--rounds 6]

The loop runs 8 tasks that each do a little work and give the loop a turn, as a loaded server does. Each
round measures one second of it three ways, taking turns: with no flush, with a flush of ``--rows`` usage
rows on a thread (``sqlite_child.insert_batch`` through ``run_in_executor``, on its own connection), and with
the same flush through :meth:`Database.insert_rows` (the writer process). Reported: the loop's turns a second,
how long the flush took, and the thread's voluntary context switches (each one a wake-up the loop paid for by
giving up the GIL). By hand only, never a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from proxy.monitoring.schema import MIGRATIONS
from proxy.monitoring.usage import _ADD_HOURLY, COLUMNS, HOUR
from proxy.platform.sql import SQLITE, Statement
from proxy.platform.sqlite import Database
from proxy.platform.sqlite_child import connect, insert_batch, values_per_statement

ADD_HOURLY = Statement(_ADD_HOURLY.format(hour=SQLITE.bucket("ts", HOUR)))


def rows(count: int) -> list[Any]:
    now = time.time()
    flat: list[Any] = []
    for i in range(count):
        flat += [now + i * 1e-4, uuid.uuid4().hex, "/v1/chat/completions", "gpt-4o-mini", 28, 24, 0, "exact_hit",
                 "exact", 200, 0.05, 0, None, 0.0, 0.00012]
    return flat


async def _spin(stop: list[bool], turns: list[int]) -> None:
    while not stop[0]:
        scratch = {}
        for i in range(60):  # Python code, as a request's handling is (bytecode, not one C call)
            scratch[i] = i * 2
        turns[0] += 1
        await asyncio.sleep(0)


def _switches(native_id: int | None) -> int:
    if native_id is None:
        return 0
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("voluntary_ctxt_switches"))


async def _second(flush: Any) -> tuple[float, float | None]:
    stop, turns = [False], [0]
    tasks = [asyncio.ensure_future(_spin(stop, turns)) for _ in range(8)]
    started = time.perf_counter()
    took = None
    if flush is not None:
        await flush()
        took = time.perf_counter() - started
    while time.perf_counter() - started < 1.0:
        await asyncio.sleep(0.01)
    stop[0] = True
    await asyncio.gather(*tasks)
    return turns[0] / (time.perf_counter() - started), took


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "monitoring.sqlite3", MIGRATIONS)
        await db.open()
        loop = asyncio.get_running_loop()
        thread_conn: list[Any] = []
        thread_id: list[int | None] = [None]

        def on_thread(flat: list[Any]) -> None:
            if not thread_conn:
                thread_conn.append(connect(db.path))
                thread_id[0] = threading.get_native_id()
            conn = thread_conn[0]
            step = values_per_statement(conn, len(COLUMNS))
            chunks = (flat[start:start + step] for start in range(0, len(flat), step))
            insert_batch(conn, "usage", COLUMNS, chunks, [(ADD_HOURLY.sql, (), False)], None)

        results: dict[str, list[float]] = {"no flush": [], "thread": [], "process": []}
        took: dict[str, list[float]] = {"thread": [], "process": []}
        switches: list[int] = []
        for _ in range(rounds):
            for name in results:
                flat = rows(count)
                if name == "thread":
                    before = _switches(thread_id[0])

                    async def flush(flat: list[Any] = flat) -> None:
                        await loop.run_in_executor(None, on_thread, flat)
                elif name == "process":
                    async def flush(flat: list[Any] = flat) -> None:
                        await db.insert_rows("usage", COLUMNS, flat, then=[ADD_HOURLY])
                else:
                    flush = None  # type: ignore[assignment]
                rate, spent = await _second(flush)
                results[name].append(rate)
                if spent is not None:
                    took[name].append(spent)
                if name == "thread":
                    switches.append(_switches(thread_id[0]) - before)
        await db.close()
        if thread_conn:
            await loop.run_in_executor(None, thread_conn[0].close)
        base = statistics.median(results["no flush"])
        print(f"{count} rows a flush, {rounds} rounds, medians; pid {os.getpid()}")
        for name, rates in results.items():
            line = f"{name:<9} {statistics.median(rates):10.0f} loop turns/s  ({statistics.median(rates) / base:.3f})"
            if name in took:
                line += f"  flush {statistics.median(took[name]) * 1e3:6.0f} ms"
            if name == "thread":
                line += f"  thread's voluntary switches {statistics.median(switches):.0f}"
            print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rounds))
