"""What monitoring costs on the hot path (run by hand): ``python -m bench.monitoring_bench [--seconds 10]``.

Starts the upstream simulator and two proxies in separate processes, identical except that one has all
monitoring on (metrics, ledger, usage history, request log, stream watch) and the other runs with
``create_app(observer=NullObserver())``, so nothing is observed. Both serve the same exact hit; wrk drives
each at 32 connections, alternating between them for ``--rounds`` rounds (in ABBA order) so drift on a
shared machine hits both alike. Reports the median req/s, p50/p99 and server CPU time per request of
each, the cost of monitoring as the median over rounds of the paired difference (each "on" run against the
"off" run of the same round), which cancels the slow drifts of a busy machine (target: under 5%), and
monitoring's own CPU time per hit measured alone, which no neighbour's load can blur.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson

from bench import _harness as h
from tests.support.servers import SubprocessServer

HIT_BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Explain what an exact-match cache is in two sentences."}]})


def serve(port: int, monitoring: bool) -> None:
    """One proxy process, configured from the environment like ``cachegate serve``."""
    import uvicorn

    from proxy.app import create_app
    from proxy.contracts import NullObserver
    from proxy.settings import Settings

    settings = Settings.from_env().replace(port=port)
    app = create_app(settings) if monitoring else create_app(settings, observer=NullObserver())
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_config=None, log_level="warning")


@contextmanager
def proxy(upstream: str, *, monitoring: bool, cpu: int | None = None) -> Iterator[SubprocessServer]:
    with tempfile.TemporaryDirectory(prefix="cachegate-bench-") as data:
        env = {"UPSTREAM_BASE_URL": upstream, "DATA_DIR": data, "LOG_PATH": str(Path(data) / "requests.log"),
               "SEMANTIC_MODE": "off", "LOG_LEVEL": "warning", "PYTHONPATH": str(h.ROOT)}
        cmd = [sys.executable, "-m", "bench.monitoring_bench", "serve", "--port", "{port}",
               "--monitoring", "on" if monitoring else "off"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        with SubprocessServer(cmd, env=env, health_path="/health", startup_timeout=120, cwd=str(h.ROOT)) as server:
            yield server


def cpu_seconds(server: SubprocessServer) -> float:
    """User + system CPU time of the server process so far (all its threads), from /proc."""
    assert server._proc is not None
    fields = Path(f"/proc/{server._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server: SubprocessServer, args: argparse.Namespace) -> dict[str, float]:
    """One wrk run: req/s, p50/p99, and the server's CPU time per request (robust to a busy machine)."""
    before = cpu_seconds(server)
    result = h.wrk(server.url + "/v1/chat/completions", body=HIT_BODY, connections=args.connections,
                   seconds=args.seconds)
    result["cpu_us"] = (cpu_seconds(server) - before) / (result["rps"] * args.seconds) * 1e6
    return result


async def isolated_cost(requests: int = 60_000, rate: int = 6_000) -> float:
    """CPU µs per exact hit of everything monitoring does for it (observer, fold, ledger, usage row, log
    line, all threads), driven the way the background loop drives it at ``rate`` requests per second."""
    import uuid

    from proxy.app import build
    from proxy.contracts import RequestRecord
    from proxy.settings import Settings

    with tempfile.TemporaryDirectory(prefix="cachegate-bench-") as data:
        monitoring = build(Settings(data_dir=data, log_path=str(Path(data) / "requests.log"),
                                    semantic_mode="off")).monitoring
        await monitoring.start()
        observer = monitoring.telemetry.observer
        usage = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50,
                 "prompt_tokens_details": {"cached_tokens": 0}}
        records = [RequestRecord(request_id=uuid.uuid4().hex, route="/v1/chat/completions", method="POST",
                                 started_at=time.time(), status=200, model="gpt-4o-mini", outcome="exact_hit",
                                 tier="exact", duration=0.0004, usage=dict(usage), api_key_hash="0" * 64)
                   for _ in range(requests)]
        started = time.process_time()
        for i, record in enumerate(records, 1):
            observer.cache_lookup("exact", "hit", 0.0001)
            observer.response_started(record)
            observer.request_done(record)
            if i % (rate // 10) == 0:  # the loop folds every 0.1 s ...
                observer.fold()
            if i % rate == 0:  # ... and writes every second
                await monitoring.flush()
        await monitoring.flush()
        spent = time.process_time() - started
        await monitoring.stop()
    return spent / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="(internal) run one proxy")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--monitoring", choices=["on", "off"], required=True)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per proxy, alternating")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the proxies to the last CPU and wrk to the others")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.monitoring == "on")
        return

    results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    proxy_cpu = cpus[-1] if pin else None
    if pin:  # the proxy under test gets a CPU of its own; wrk (started from here) and the simulator the rest
        os.sched_setaffinity(0, cpus[:-1])
    with h.simulator() as sim:
        upstream = sim.url + "/v1"
        with proxy(upstream, monitoring=True, cpu=proxy_cpu) as on, \
                proxy(upstream, monitoring=False, cpu=proxy_cpu) as off:
            servers = {"on": on, "off": off}
            for server in servers.values():
                url = server.url + "/v1/chat/completions"
                for _ in range(2):  # fill, then check it hits
                    response = httpx.post(url, content=HIT_BODY, headers={"content-type": "application/json"})
                assert response.headers["x-cache"] == "HIT", response.headers
                h.wrk(url, body=HIT_BODY, connections=args.connections, seconds=2)  # warm up
            for round_no in range(args.rounds):
                order = ("on", "off") if round_no % 2 == 0 else ("off", "on")  # ABBA: no favoured position
                for name in order:
                    results[name].append(measure(servers[name], args))
            counted = httpx.get(on.url + "/metrics").json()["cache_performance"]

    def med(name: str, key: str) -> float:
        return statistics.median(run[key] for run in results[name])

    print(f"\nexact hits, wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} alternating rounds "
          f"(median), {os.cpu_count()} CPUs" + (f", proxies pinned to CPU {proxy_cpu}, wrk to {cpus[:-1]}" if pin
                                               else ""))
    print(f"{'monitoring':<14}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}   runs (req/s)")
    for name in ("off", "on"):
        runs = ", ".join(f"{run['rps']:.0f}" for run in results[name])
        print(f"{name:<14}{med(name, 'rps'):>10.0f}{med(name, 'p50'):>9.2f}{med(name, 'p99'):>9.2f}"
              f"{med(name, 'cpu_us'):>12.1f}   {runs}")
    pairs = list(zip(results["off"], results["on"], strict=True))
    cost = statistics.median((off["rps"] - on["rps"]) / off["rps"] * 100 for off, on in pairs)
    cpu_cost = statistics.median((on["cpu_us"] - off["cpu_us"]) / off["cpu_us"] * 100 for off, on in pairs)
    print(f"\ncost of monitoring (median of paired rounds): throughput {cost:.1f}%, CPU per request "
          f"{cpu_cost:+.1f}% (target < 5%)")
    print(f"the monitored proxy counted {counted['total_requests']} requests, {counted['exact_hits']} exact hits")

    alone = statistics.median(asyncio.run(isolated_cost()) for _ in range(3))
    print(f"monitoring's own work per exact hit, measured alone (all threads): {alone:.1f} µs CPU = "
          f"{alone / med('off', 'cpu_us') * 100:.1f}% of the {med('off', 'cpu_us'):.0f} µs the unmonitored proxy "
          f"spends per hit")


if __name__ == "__main__":
    main()
