"""How long the proxy's event loop stalls under load (run by hand): ``python -m bench.loop_lag [--versus DIR]``.

A hit's p99 at 32 connections is set by the moments the loop is held: every request in flight waits for
them. This runs the proxy (memory store, the simulator upstream) with a probe on its loop, a task that
sleeps 1 ms and records how late it wakes, while wrk sends one cached request; with ``--versus`` a second
checkout's proxy runs beside it. The bare endpoint of :mod:`bench.bare_server`, under the same probe on the
same server stack, is the control row; all take turns, round by round. Per proxy it prints the wrk figures
(medians of the rounds) and the stalls per second of load: how often the probe woke more than 5, 10 and
20 ms late, and the longest. The probe's own cost is a wake-up a millisecond (both proxies pay it).

What a stall is: "on CPU" is the median, over the stalls of more than 20 ms, of the loop thread's CPU time
during the stall over its length. Near 1, the loop's thread was running (code held the loop: the stacks
printed below say which); near 0, it was not running at all (the OS ran something else, or another thread
held the GIL). A watchdog thread reads the loop thread's stack 10 ms into each stall.

    python -m bench.loop_lag [--seconds 5] [--rounds 6] [--versus /path/to/other/checkout]

The proxy process is ``python bench/loop_lag.py --serve PORT OUT`` with ``PYTHONPATH`` at the checkout
measured, so the other checkout's ``proxy`` package runs under this file's probe.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

LIMITS = (0.005, 0.010, 0.020)


def serve(port: int, out: Path, *, bare: bool) -> None:
    """The proxy from the environment's settings (``bare``: the bare endpoint of :mod:`bench.bare_server`
    instead), with the probe; its stalls go to ``out`` when it stops."""
    import uvicorn

    from proxy.http.server import uvicorn_options

    late: list[float] = []  # how late each late wake-up was
    busy: list[float] = []  # the loop thread's CPU time over that sleep: near the lag when it ran, else waited
    stacks: collections.Counter[str] = collections.Counter()
    tick = [time.perf_counter()]

    async def probe() -> None:
        while True:
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            tick[0] = now = time.perf_counter()
            lag = now - started - 0.001
            if lag > LIMITS[0]:
                late.append(lag)
                busy.append(time.thread_time() - cpu)

    def watchdog(loop_thread: int) -> None:
        """Where the loop's thread is while the probe is 10 ms late (once a stall): what holds the loop."""
        seen = 0.0
        while True:
            time.sleep(0.002)
            if time.perf_counter() - tick[0] > LIMITS[1] and tick[0] != seen:
                seen = tick[0]
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    stacks["\n".join(f"  {f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno} {f.name}"
                                      for f in traceback.extract_stack(frame)[-8:])] += 1

    class Probed(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            self.probe = asyncio.get_running_loop().create_task(probe())
            threading.Thread(target=watchdog, args=(threading.get_ident(),), daemon=True).start()

        async def shutdown(self, sockets: Any = None) -> None:
            # here rather than after run(): uvicorn raises the SIGTERM it caught again once it has stopped
            self.probe.cancel()
            out.write_text(json.dumps({"late": late, "busy": busy, "stacks": stacks.most_common(5)}))
            await super().shutdown(sockets)

    options = uvicorn_options()
    if bare:
        from bench.bare_server import app
    else:
        from proxy.app import create_app
        from proxy.settings import Settings

        app = create_app(Settings.from_env())
        options = uvicorn_options(app.early)  # served as `cachegate serve` serves it
    Probed(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)).run()


def measure(seconds: int, rounds: int, versus: Path | None) -> None:
    from bench import _harness as h
    from bench.exact_bench import HIT_BODY

    # (row, checkout, bare endpoint?): the bare endpoint on the same server stack is the control
    rows = [("bare endpoint (the ceiling)", h.ROOT, True), ("this checkout", h.ROOT, False),
            *([(f"versus {versus}", versus, False)] if versus else [])]
    with h.simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, tuple[Any, Path]] = {}
        try:
            for index, (name, root, bare) in enumerate(rows):
                data, out = Path(tmp) / f"data{index}", Path(tmp) / f"stalls{index}.json"
                env = {"PYTHONPATH": str(root), "UPSTREAM_BASE_URL": sim.url + "/v1", "DATA_DIR": str(data),
                       "LOG_PATH": str(data / "requests.log"), "SEMANTIC_MODE": "off", "LOG_LEVEL": "warning"}
                command = [sys.executable, str(Path(__file__).resolve()), "--serve", "{port}", str(out),
                           *(["--bare"] if bare else [])]
                server = h.SubprocessServer(command, env=env, health_path="/" if bare else "/health",
                                            startup_timeout=120, cwd=str(root))
                server.start()
                servers[name] = (server, out)
            urls = {name: server.url + "/v1/chat/completions" for name, (server, _) in servers.items()}
            for url in urls.values():
                h.wrk(url, body=HIT_BODY, seconds=1)  # fills the cache and warms the proxy
            time.sleep(1)  # the warm-up's stalls are not the figure: they are counted, so measure them apart
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            for _ in range(rounds):
                for name, url in urls.items():
                    runs[name].append(h.wrk(url, body=HIT_BODY, seconds=seconds))
        finally:
            for server, _ in servers.values():
                server.signal(signal.SIGTERM)  # uvicorn stops, then the stalls are written
            for server, _ in servers.values():
                server.wait(60)
                server.stop()
        load = seconds * rounds + 1  # seconds of load each proxy had, the warm-up included
        print(f"\n{'proxy':<40}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
              + "".join(f"{'>' + str(int(limit * 1000)) + ' ms/s':>10}" for limit in LIMITS) + f"{'max ms':>8}"
              + f"{'on CPU':>10}")
        reports: list[tuple[str, list[tuple[str, int]]]] = []
        for name, (_, out) in servers.items():
            found = json.loads(out.read_text()) if out.exists() else {"late": [], "busy": [], "stacks": []}
            late, busy = found["late"], found["busy"]
            row = {field: h.median([run[field] for run in runs[name]]) for field in ("rps", "p50", "p99")}
            long = [cpu / lag for lag, cpu in zip(late, busy, strict=True) if lag > LIMITS[2]]
            print(f"{name:<40}{row['rps']:>8.0f}{row['p50']:>8.2f}{row['p99']:>8.2f}"
                  + "".join(f"{sum(lag > limit for lag in late) / load:>10.2f}" for limit in LIMITS)
                  + f"{max(late, default=0) * 1000:>8.1f}"
                  + (f"{h.median(long):>10.2f}" if long else f"{'-':>10}"))
            reports.append((name, found["stacks"]))
        for name, stacks in reports:  # where the loop's thread was, 10 ms into a stall
            print(f"\n{name}: the loop's thread 10 ms into a stall (most seen first)")
            for stack, count in stacks:
                print(f"{count:>5} times\n{stack}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--versus", type=Path, help="another checkout: its proxy takes turns with this one's")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]), bare=args.bare)
    else:
        measure(args.seconds, args.rounds, args.versus)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
