"""Disk-level benchmark (run by hand): ``python -m bench.disk_bench [--entries 20000] [--reads 5000]``.

Three questions, in-process (no HTTP: the proxy's own floor is ``bench/exact_bench.py``), on this machine's
disk, each read as p50/p99 over ``--reads`` random keys of ``--entries`` stored ~2 KB answers:

1. **Which store** for the disk level: cachegate's :class:`~proxy.cache.disk.DiskBackend` (SQLite WAL via
   ``proxy.platform.sqlite``) against ``diskcache`` 5.6 (``pip install diskcache``; skipped without it), both
   called the same way: through one worker thread, as the event loop must never wait on disk. Reads, writes,
   and the file size for the same entries.
2. **Hits from disk vs memory**: ``ExactCache.lookup`` over memory+disk with the memory level cold (every
   read promoted from disk, then dropped again) vs warm.
3. **The hot path's cost** of having a disk level at all: memory hits of ``ExactCache`` over memory alone
   vs over memory+disk (target: nothing measurable); with ``--http``, also through two real proxies
   (``CACHE_DISK_MAX_BYTES=0`` vs the default) with wrk at 32 connections, rounds taking turns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from proxy.cache.disk import DiskBackend
from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.contracts import NullObserver
from proxy.platform.failopen import FailOpen

PREFIX = "bench:"


def answer(i: int) -> bytes:
    text = " ".join(f"word{(i * 7 + j) % 997}" for j in range(300))  # ~2.7 KB of text, compressible
    completion = {"id": f"c{i}", "object": "chat.completion", "model": "m",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    return CachedResponse.from_completion(completion, model="m", stored_at=time.time(), ttl=86400).encode()


def key(i: int) -> str:
    return f"{PREFIX}exact:owner:-:model:{i:064x}"


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1e6:8.1f} µs   p99 {p99 * 1e6:8.1f} µs"


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    samples = []
    for call in calls:
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else \
        sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def which_store(entries: int, reads: int, workdir: Path) -> None:
    values = [answer(i) for i in range(entries)]
    order = [random.randrange(entries) for _ in range(reads)]
    print(f"1. the store: {entries} entries of {statistics.mean(map(len, values)):.0f} bytes, {reads} reads")
    disk = DiskBackend(workdir / "cachegate.sqlite3", 10**10)
    started = time.perf_counter()
    for i, value in enumerate(values):
        await disk.set(key(i), value, 86400)
    write = (time.perf_counter() - started) / entries
    samples = await timed([lambda i=i: disk.get(key(i)) for i in order])
    print(f"   cachegate DiskBackend  write {write * 1e6:7.1f} µs each   read {figures(samples)}   "
          f"file {file_size(workdir / 'cachegate.sqlite3') / 1e6:.1f} MB")
    await disk.aclose()
    try:
        import diskcache  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print("   diskcache: not installed (pip install diskcache), skipped")
        return
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(max_workers=1)
    cache = diskcache.Cache(str(workdir / "diskcache"), size_limit=10**10, eviction_policy="least-recently-used")
    started = time.perf_counter()
    for i, value in enumerate(values):
        await loop.run_in_executor(thread, lambda i=i, value=value: cache.set(key(i), value, expire=86400))
    write = (time.perf_counter() - started) / entries
    samples = await timed([lambda i=i: loop.run_in_executor(thread, cache.get, key(i)) for i in order])
    print(f"   diskcache (LRU)        write {write * 1e6:7.1f} µs each   read {figures(samples)}   "
          f"file {file_size(workdir / 'diskcache') / 1e6:.1f} MB")
    cache.close()
    thread.shutdown()


def tier(levels: list[Any]) -> ExactCache:
    return ExactCache(levels, prefix=PREFIX, observer=NullObserver(), failopen=FailOpen(NullObserver()))


async def disk_vs_memory(entries: int, reads: int, workdir: Path) -> None:
    print("2. exact hits: from disk (memory cold) vs from memory")
    memory = MemoryBackend(10**9)
    cache = tier([memory, DiskBackend(workdir / "tiered.sqlite3", 10**10)])
    for i in range(entries):
        value = answer(i)
        for level in cache.levels:
            await level.set(key(i), value, 86400)
    order = [random.randrange(entries) for _ in range(reads)]

    async def cold(i: int) -> None:
        await memory.delete([key(i)])  # not timed below: only the lookup is
    cold_samples = []
    for i in order:
        await cold(i)
        started = time.perf_counter()
        assert await cache.lookup(key(i)) is not None
        cold_samples.append(time.perf_counter() - started)
    warm_samples = await timed([lambda i=i: cache.lookup(key(i)) for i in order])
    print(f"   from disk   {figures(cold_samples)}")
    print(f"   from memory {figures(warm_samples)}")
    await cache.stop()


async def hot_path(entries: int, reads: int, workdir: Path, rounds: int = 5) -> None:
    print("3. memory hits: memory alone vs memory in front of a disk level (rounds take turns)")
    alone = tier([MemoryBackend(10**9)])
    tiered = tier([MemoryBackend(10**9), DiskBackend(workdir / "hot.sqlite3", 10**10)])
    for cache in (alone, tiered):
        for i in range(entries):
            await cache.levels[0].set(key(i), answer(i), 86400)
    order = [random.randrange(entries) for _ in range(reads)]
    results: dict[str, list[float]] = {"alone": [], "tiered": []}
    for _ in range(rounds):
        for name, cache in (("alone", alone), ("tiered", tiered)):
            results[name] += await timed([lambda i=i, cache=cache: cache.lookup(key(i)) for i in order])
    print(f"   memory alone        {figures(results['alone'])}")
    print(f"   memory (+disk)      {figures(results['tiered'])}")
    await alone.stop()
    await tiered.stop()


def http_hot_path(seconds: int, rounds: int) -> None:
    import contextlib

    import httpx

    from bench import _harness as h
    from bench.exact_bench import HIT_BODY

    print(f"4. exact hits through the proxy (wrk, 32 connections, {rounds} rounds of {seconds} s, taking turns)")
    runs: dict[str, list[dict[str, float]]] = {"memory only (CACHE_DISK_MAX_BYTES=0)": [], "memory + disk": []}
    with h.simulator() as sim, contextlib.ExitStack() as stack:
        servers = {"memory only (CACHE_DISK_MAX_BYTES=0)": stack.enter_context(
                       h.proxy(sim.url + "/v1", source=h.ROOT, CACHE_DISK_MAX_BYTES="0")),
                   "memory + disk": stack.enter_context(h.proxy(sim.url + "/v1", source=h.ROOT))}
        for server in servers.values():
            httpx.post(server.url + "/v1/chat/completions", content=HIT_BODY,
                       headers={"content-type": "application/json"})
        for _ in range(rounds):
            for name, server in servers.items():
                runs[name].append(h.wrk(server.url + "/v1/chat/completions", body=HIT_BODY, seconds=seconds))
    for name, results in runs.items():
        rps, p50, p99 = (h.median([r[key] for r in results]) for key in ("rps", "p50", "p99"))
        print(f"   {name:38s} {rps:8.0f} req/s   p50 {p50:.2f} ms   p99 {p99:.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=5_000)
    parser.add_argument("--http", action="store_true", help="also through two real proxies with wrk")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    random.seed(7)
    with tempfile.TemporaryDirectory(prefix="cachegate-disk-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        await which_store(args.entries, args.reads, workdir)
        await disk_vs_memory(args.entries, args.reads, workdir)
        await hot_path(args.entries, args.reads, workdir)
    if args.http:
        http_hot_path(args.seconds, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
