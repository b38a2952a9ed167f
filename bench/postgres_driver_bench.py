"""Which PostgreSQL driver writes usage rows fastest: asyncpg or psycopg 3, each by its best bulk path.

The proxy writes its usage rows in batches (one flush a second, up to thousands of rows under load), so what
matters is rows per second for batches of that size, and the CPU the driver spends in the proxy's own process
(that is time the event loop does not serve requests). For each driver and method this inserts ``--rows``
rows of the real ``usage`` shape in batches of ``--batch`` (each batch one transaction) into a throw-away
cluster, and prints rows/s (wall) and client CPU microseconds per row.

    pip install "psycopg[binary]"   # only this comparison needs it; cachegate uses asyncpg
    python -m bench.postgres_driver_bench [--rows 200000] [--batch 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import psycopg

from proxy.monitoring.schema import MIGRATIONS
from proxy.monitoring.usage import COLUMNS
from tests.support.postgres import PostgresServer, require_postgres

INSERT_PG = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))})"
INSERT_PSYCOPG = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"


def make_rows(n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    now = time.time()
    models = ["gpt-4o-mini", "gpt-4o", "llama-3.3-70b", "deepseek-chat"]
    outcomes = ["miss", "exact_hit", "semantic_hit", "bypass"]
    return [(now - rng.random() * 86400, f"req-{i:012d}", "/v1/chat/completions", rng.choice(models),
             rng.randint(10, 4000), rng.randint(1, 800), rng.randint(0, 1000), rng.choice(outcomes), None, 200,
             rng.random() * 900, rng.randint(0, 1), "ab" * 32, rng.random() / 100, 0.0) for i in range(n)]


async def asyncpg_executemany(url: str, batches: list[list[tuple[Any, ...]]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for batch in batches:
            async with conn.transaction():
                await conn.executemany(INSERT_PG, batch)
    finally:
        await conn.close()


async def asyncpg_copy(url: str, batches: list[list[tuple[Any, ...]]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for batch in batches:
            await conn.copy_records_to_table("usage", records=batch, columns=COLUMNS)
    finally:
        await conn.close()


async def psycopg_executemany(url: str, batches: list[list[tuple[Any, ...]]]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for batch in batches:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(INSERT_PSYCOPG, batch)


async def psycopg_copy(url: str, batches: list[list[tuple[Any, ...]]]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for batch in batches:
            async with conn.transaction(), conn.cursor() as cur, \
                    cur.copy(f"COPY usage ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in batch:
                    await copy.write_row(row)


async def psycopg_copy_binary(url: str, batches: list[list[tuple[Any, ...]]]) -> None:
    types = ["float8", "text", "text", "text", "int4", "int4", "int4", "text", "text", "int4", "float8", "int4",
             "text", "float8", "float8"]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for batch in batches:
            async with conn.transaction(), conn.cursor() as cur, \
                    cur.copy(f"COPY usage ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in batch:
                    await copy.write_row(row)


METHODS: dict[str, Callable[[str, list[list[tuple[Any, ...]]]], Awaitable[None]]] = {
    "asyncpg executemany": asyncpg_executemany,
    "asyncpg copy_records_to_table": asyncpg_copy,
    "psycopg executemany (pipeline)": psycopg_executemany,
    "psycopg COPY text": psycopg_copy,
    "psycopg COPY binary": psycopg_copy_binary,
}


async def measure(url: str, method: Callable[[str, list[list[tuple[Any, ...]]]], Awaitable[None]],
                  rows: list[tuple[Any, ...]], batch: int) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    await conn.execute("TRUNCATE usage")
    await conn.close()
    batches = [rows[i:i + batch] for i in range(0, len(rows), batch)]
    wall, cpu = time.perf_counter(), time.process_time()
    await method(url, batches)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(rows) / wall, cpu / len(rows) * 1e6


async def main(args: argparse.Namespace) -> None:
    rows = make_rows(args.rows)
    with PostgresServer(require_postgres()) as pg:
        url = pg.create_database()
        conn = await asyncpg.connect(url)
        for statement in MIGRATIONS[0].for_engine("postgres"):
            await conn.execute(statement)
        await conn.close()
        print(f"{args.rows} rows in batches of {args.batch}, best and median of {args.repeat} runs")
        print(f"{'method':34} {'rows/s (best)':>14} {'rows/s (median)':>16} {'client CPU us/row':>18}")
        for name, method in METHODS.items():
            runs = [await measure(url, method, rows, args.batch) for _ in range(args.repeat)]
            rates = [rate for rate, _ in runs]
            cpu = statistics.median(c for _, c in runs)
            print(f"{name:34} {max(rates):>14,.0f} {statistics.median(rates):>16,.0f} {cpu:>18.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
