"""Faults, measured (issue 14), run by hand: ``python -m bench.fault_bench [--quick] [--runs a,b]``.

Starts HAProxy → 2 replicas → a 3-master Redis Cluster, the embedding service and the upstream simulator
(50 ms a call), each its own process on loopback (:mod:`bench.faults.topology`); measures the stack's
capacity for the request mix (closed loop) and then drives it open loop at ``--load`` of that
(:mod:`bench.faults.load`: Zipf-like pool plus fresh prompts, half streams, two tenants). Each run
(:mod:`bench.faults.runs`) is a steady window, a fault, a recovery window; every request goes to
``<log dir>/<run>.jsonl``. Prints, per run, failed requests, wrong answers, p50/p99 in the fault window
against the steady one, how long the hit rate took to come back, upstream calls for 20 identical
misses and stale answers (:mod:`bench.faults.report`); then, unless ``--no-costs``, the CPU each part
spends per exact hit, semantic hit and miss (:mod:`bench.faults.costs`), the basis of the README's sizing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

from bench.faults import costs, report
from bench.faults.load import Mix, closed_loop
from bench.faults.runs import RUNS, Windows, run
from bench.faults.topology import HAPROXY, STALE_IF_ERROR, Stack


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows (8 s steady, 6 s fault, 12 s recovery)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--load", type=float, default=0.5, help="open-loop rate as a share of the measured capacity")
    parser.add_argument("--rate", type=float, help="requests/s (instead of --load x capacity)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the upstream takes per call")
    parser.add_argument("--ttl", type=int, default=20, help="CACHE_TTL of the replicas")
    parser.add_argument("--log-dir", type=Path, help="where the per-request logs go (default: a new temp dir)")
    parser.add_argument("--no-costs", action="store_true", help="skip the CPU-per-request measurement")
    args = parser.parse_args()
    unknown = set(args.runs.split(",")) - set(RUNS)
    if unknown:
        parser.error(f"--runs: unknown {', '.join(sorted(unknown))}; choose from {', '.join(RUNS)}")
    if not Path(HAPROXY).exists():
        parser.error(f"{HAPROXY} is needed: apt-get install haproxy")
    return args


async def main() -> None:
    args = _args()
    windows = Windows(8, 6, 12) if args.quick else Windows(20, 15, 25)
    logs = args.log_dir or Path(tempfile.mkdtemp(prefix="cachegate-faults-"))
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cachegate-fault-stack-") as work, \
            Stack(Path(work), latency=args.latency, ttl=args.ttl, keep_logs=logs) as stack:
        print(f"stack up in {time.monotonic() - started:.0f} s: {stack.url} → "
              f"{', '.join(r.url for r in stack.replicas)}; cluster {stack.cluster.url}", flush=True)
        mix = Mix(seed=1)
        await closed_loop(stack.url, mix, workers=16, seconds=windows.steady)  # warm: the pool's hot part stored
        measured = await closed_loop(stack.url, mix, workers=48, seconds=windows.steady)
        capacity = sum(not r.failed for r in measured) / windows.steady
        rate = args.rate or round(capacity * args.load, 1)
        print(f"capacity (closed loop, 48 clients, this mix): {capacity:.0f} req/s; open-loop rate {rate} req/s",
              flush=True)
        rows = []
        answered = report.Answered(keep=args.ttl + STALE_IF_ERROR)
        for name in args.runs.split(","):
            outcome = await run(name, stack, mix, rate=rate, windows=windows, log=logs / f"{name}.jsonl")
            rows.append(report.analyse(outcome, redis_timeout=stack.redis_timeout, answered=answered))
            print(f"{name}: done ({rows[-1].note})", flush=True)
        cost_rows = [] if args.no_costs else await costs.measure(stack, seconds=windows.steady / 2)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    print(f"\n{when}, {platform.node()}: {os.cpu_count()} cores (load average {load:.1f} at the end), "
          f"upstream {args.latency * 1000:.0f} ms, CACHE_TTL {args.ttl} s, rate {rate} req/s "
          f"({'--quick' if args.quick else 'full'} windows {windows.steady:.0f}/{windows.fault:.0f}/"
          f"{windows.recovery:.0f} s); logs in {logs}; took {time.monotonic() - started:.0f} s\n")
    print(report.table(rows, redis_timeout=stack.redis_timeout))
    if cost_rows:
        print("\nCPU per request (closed loop, each part's /proc CPU over the requests answered):\n")
        print(costs.table(cost_rows))


if __name__ == "__main__":
    asyncio.run(main())
