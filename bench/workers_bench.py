"""One process per core (run by hand): ``python -m bench.workers_bench [--seconds 10] [--rounds 5]``.

Exact-hit throughput on Redis through ``cachegate serve`` with ``WORKERS=1`` and ``WORKERS=2`` in one run:
wrk (one thread) at 32 connections, the rows taking turns round after round (so a noisy moment on the machine
does not favour one), each figure the median of the rounds, and the 2-process gain the median of each round's
ratio. A ceiling row (the bare ASGI endpoint on the proxy's own server stack, one process: :mod:`bench.bare_server`)
shows what the machine gave at the time. The load average is printed before and after: the machine may be shared.
Beside each figure, the CPU the server (all its processes), Redis and wrk spent per 1000 requests, and how many
cores the three kept busy: where a second worker's core went.

wrk, Redis and the proxy's processes share the machine's cores: on a 2-core machine the load tool and Redis
take a good part of what a second worker would use, so the gain measured here is a floor of what 2 workers give
with the load coming from elsewhere. The checkout measured is this one (``python -m proxy`` with this directory
first on ``PYTHONPATH``), not the installed ``cachegate``. ``REDIS_TIMEOUT`` is 2 s (:data:`REDIS_TIMEOUT`); at the
end the simulator's count of chat calls during the rounds says whether every measured request was a hit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import time

import httpx
import psutil

from bench import _harness as h
from bench.exact_bench import HIT_BODY
from tests.support.workers import workers_listening

CHAT = "/v1/chat/completions"
#: above the default 0.25 s: on a loaded machine a Redis call cut short fails open into a miss, which would make
#: the hit rows partly misses (the count of upstream calls at the end says whether any were)
REDIS_TIMEOUT = "2"
NAMES = ["ceiling: bare ASGI, our stack, 1 process", "exact hit, redis, 1 process", "exact hit, redis, 2 processes"]


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def cached(url: str, *, timeout: float = 30.0) -> None:
    """Ask until ``url`` answers HIT: the first answer is a miss, stored off the request path."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.post(url, content=HIT_BODY, headers={"content-type": "application/json"}, timeout=30)
        answer.raise_for_status()
        if answer.headers.get("x-cache") == "HIT":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} still answers {answer.headers.get('x-cache')} after {timeout:g}s")
        time.sleep(0.1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` and their children (a supervisor's workers), so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            for one in (process, *process.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = one.cpu_times()
                    total += times.user + times.system
    return total


def reaped_children_cpu() -> float:
    """CPU time of this process's children that ended (each wrk run, once it has been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(url: str, body: bytes | None, *, server: list[int], redis: list[int], connections: int,
             seconds: int) -> dict[str, float]:
    """One wrk run, with the CPU each part spent in it, in ms per 1000 requests, and the cores busy in all
    (``cores``: the three parts' CPU over the run's wall time; the rest of the machine is not counted)."""
    before = cpu_seconds(server), cpu_seconds(redis), reaped_children_cpu()
    started = time.monotonic()
    run = h.wrk(url, body=body, connections=connections, seconds=seconds)
    wall = time.monotonic() - started
    spent = [after - first for first, after in
             zip(before, (cpu_seconds(server), cpu_seconds(redis), reaped_children_cpu()), strict=True)]
    requests = run["rps"] * seconds / 1000
    return {**run, "server_cpu": spent[0] / requests * 1000, "redis_cpu": spent[1] / requests * 1000,
            "wrk_cpu": spent[2] / requests * 1000, "cores": sum(spent) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    print(f"load average before (1, 5, 15 min): {load()}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in NAMES}
    with h.simulator() as sim, h.redis() as redis, h.bare() as ceiling, contextlib.ExitStack() as stack:
        upstream = sim.url + "/v1"
        common = {"REDIS_URL": redis.url, "REDIS_TIMEOUT": REDIS_TIMEOUT}
        one = stack.enter_context(h.proxy(upstream, source=h.ROOT, WORKERS="1", **common))
        two = stack.enter_context(h.proxy(upstream, source=h.ROOT, WORKERS="2", **common))
        assert two.pid is not None
        workers_listening(two.pid, two.port, 2)  # /health answered once the first was up; wait for both
        assert ceiling.pid is not None and one.pid is not None and redis.pid is not None
        targets: dict[str, tuple[str, list[int]]] = {NAMES[0]: (ceiling.url + CHAT, [ceiling.pid]),
                                                     NAMES[1]: (one.url + CHAT, [one.pid]),
                                                     NAMES[2]: (two.url + CHAT, [two.pid])}
        for server in (one, two):
            cached(server.url + CHAT)
        for url, _ in targets.values():  # warm-up, unmeasured: connections, caches, the CPU clock
            h.wrk(url, body=HIT_BODY, connections=args.connections, seconds=2)
        before = httpx.get(sim.url + "/_sim/stats").json()["chat_calls"]
        for _ in range(args.rounds):
            for name, (url, pids) in targets.items():
                runs[name].append(measured(url, HIT_BODY, server=pids, redis=[redis.pid],
                                           connections=args.connections, seconds=args.seconds))
        upstream_calls = httpx.get(sim.url + "/_sim/stats").json()["chat_calls"] - before
    print(f"load average after (1, 5, 15 min): {load()}")

    print(f"cores: {os.cpu_count()}; wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds taking "
          f"turns; wrk, Redis and the proxies share the cores")
    for name in NAMES:
        print(f"{name}: req/s per round " + ", ".join(f"{run['rps']:.0f}" for run in runs[name]))
    gains = [two_run["rps"] / one_run["rps"] for one_run, two_run in zip(runs[NAMES[1]], runs[NAMES[2]], strict=True)]
    print("\nCPU: ms per 1000 requests of the server (all its processes), Redis and wrk; cores: the three's busy cores")
    print(f"{'what':<42}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'server':>8}{'redis':>7}{'wrk':>6}{'cores':>7}")
    for name in NAMES:
        row = {field: h.median([run[field] for run in runs[name]]) for field in runs[name][0]}
        print(f"{name:<42}{row['rps']:>8.0f}{row.get('p50', 0):>8.2f}{row.get('p99', 0):>8.2f}"
              f"{row['server_cpu']:>8.0f}{row['redis_cpu']:>7.0f}{row['wrk_cpu']:>6.0f}{row['cores']:>7.2f}")
    print(f"\n2 processes / 1 process: median of the rounds {h.median(gains):.2f}x "
          f"(rounds: {', '.join(f'{gain:.2f}' for gain in gains)})")
    print(f"upstream chat calls during the rounds: {upstream_calls} (0: every measured request was a hit; a Redis "
          f"call slower than REDIS_TIMEOUT={REDIS_TIMEOUT} fails open into a miss)")


if __name__ == "__main__":
    main()
