"""Where an exact hit's time goes (run by hand): ``python -m bench.hit_profile [--seconds 10] [--redis] [--top N]``.

Two views, as issue 16 asks:
- **sampled under load**: py-spy samples a running proxy (its own process, the simulator upstream) while wrk
  sends one cached request at 32 connections; each sample is charged to the innermost frame that belongs to
  a step of the request (the table below), so a call into the standard library counts for the step that made
  it. The share of samples is the share of the process's CPU; with the measured req/s it gives µs per hit.
- **in isolation** (``--cprofile``): the app called in-process, no sockets, under cProfile; the functions
  with the most time of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import _harness as h
from bench.exact_bench import HIT_BODY

#: (step, substrings of a frame "function (file:line)"): the first step of the innermost matching frame wins.
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("monitoring record", ("proxy/monitoring/",)),
    ("store read (exact tier)", ("proxy/cache/", "proxy/platform/redis", "proxy/platform/batch", "redis/")),
    ("key and request parsing", ("proxy/core/",)),
    ("tenant and auth", ("proxy/access/",)),
    ("chat pipeline and endpoint", ("proxy/chat/", "proxy/api.py", "proxy/passthrough.py")),
    ("request context, id, headers, responses", ("proxy/http/context", "proxy/http/headers",
                                                 "proxy/http/responses", "proxy/http/asgi", "proxy/http/params")),
    ("middleware stack", ("proxy/http/middleware", "proxy/http/listeners", "starlette/", "proxy/app.py")),
    ("the write (transport)", ("proxy/http/protocol.py", "write (", "_write")),
    ("HTTP parsing and ASGI (uvicorn, httptools)", ("uvicorn/", "httptools")),
    ("event loop", ("asyncio/", "uvloop", "selectors")),
]


def step_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for step, marks in STEPS:
            if any(mark in frame for mark in marks):
                return step
    return "other"


def sample(pid: int, seconds: int, rate: int, out: Path) -> None:
    spy = shutil.which("py-spy") or str(h.BIN / "py-spy")
    subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
                    "--format", "raw", "--output", str(out), "--nonblocking"], check=True, capture_output=True)


def charge(raw: Path, leaves: collections.Counter[str] | None = None) -> tuple[collections.Counter[str], int]:
    """Samples per step, and their total; ``leaves`` is given the samples of each innermost frame."""
    steps: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        if leaves is not None:
            leaves[frames[-1]] += n
        steps["idle (waiting for the socket)" if "select (" in frames[-1] or "poll (" in frames[-1]
              else step_of(frames)] += n
    return steps, total


def under_load(seconds: int, redis: bool, top: int = 0, source: Path | None = None) -> None:
    with h.simulator() as sim, h.redis() as server:
        env: dict[str, str] = {"REDIS_URL": server.url} if redis else {}
        with h.proxy(sim.url + "/v1", source=source, **env) as proxy, tempfile.TemporaryDirectory() as tmp:
            url = proxy.url + "/v1/chat/completions"
            assert httpx.post(url, content=HIT_BODY, headers={"content-type": "application/json"}).is_success
            out = Path(tmp) / "samples.txt"
            result: dict[str, float] = {}
            load = threading.Thread(target=lambda: result.update(h.wrk(url, body=HIT_BODY, seconds=seconds + 2)))
            load.start()
            time.sleep(1)
            assert proxy.pid is not None
            sample(proxy.pid, seconds, 250, out)
            load.join()
            leaves: collections.Counter[str] = collections.Counter()
            steps, total = charge(out, leaves)
    busy = total - steps.get("idle (waiting for the socket)", 0)
    rps = result["rps"]
    print(f"exact hit on {'Redis' if redis else 'memory'}: {rps:.0f} req/s under wrk -c32 "
          f"(p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms); {total} samples, {busy} busy")
    print(f"\n{'step':<46}{'% busy':>8}{'µs/hit':>9}")
    for step, n in steps.most_common():
        if step.startswith("idle"):
            continue
        share = n / busy
        print(f"{step:<46}{share * 100:>7.1f}%{share / rps * 1e6:>9.1f}")
    print(f"{'all (one core busy, 1e6 / req/s)':<46}{'':>8}{1e6 / rps * busy / total:>9.1f}")
    if top:
        print(f"\nthe {top} innermost frames with the most samples (µs/hit):")
        for frame, n in leaves.most_common(top):
            print(f"{n / busy / rps * 1e6:7.1f}  {frame}")


async def _lifespan(app: Any) -> None:
    """Start the app's lifespan and return once it completed start-up (it runs on, in the background)."""
    started = asyncio.Event()
    messages = [{"type": "lifespan.startup"}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never shut down: the run ends with the process
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    _background.add(asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                            receive, send)))
    await started.wait()


_background: set[asyncio.Task[None]] = set()
_HEADERS = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
            (b"content-length", str(len(HIT_BODY)).encode()), (b"authorization", b"Bearer sk-bench")]


async def _hit(app: Any) -> list[dict[str, Any]]:
    """One POST /v1/chat/completions through the whole app (middleware included), no socket."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "headers": list(_HEADERS), "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 3000),
             "state": {}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": HIT_BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def isolated(runs: int) -> None:
    from proxy.app import create_app
    from proxy.settings import Settings
    from tests.support.memory_upstream import MemoryUpstream, completion, plain

    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(data_dir=data, semantic_mode="off", log_path=""),
                         upstream=MemoryUpstream(lambda call: plain(completion("An answer."))))

        async def main() -> None:
            await _lifespan(app)
            await _hit(app)
            await asyncio.sleep(0.2)  # the store is written off the request path
            head = (await _hit(app))[0]
            assert dict(head["headers"]).get(b"x-cache") == b"HIT", head
            for _ in range(2000):
                await _hit(app)
            started = time.perf_counter()
            for _ in range(runs):
                await _hit(app)
            plain_us = (time.perf_counter() - started) / runs * 1e6
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(runs):
                await _hit(app)
            profile.disable()
            print(f"\nin process, no sockets: {plain_us:.1f} µs per hit (without the profiler)")
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)

        asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--redis", action="store_true", help="the exact tier on Redis (default: in process)")
    parser.add_argument("--source", type=Path, help="profile another checkout (a `git worktree` of an older commit)")
    parser.add_argument("--top", type=int, default=0, metavar="N", help="also list the N busiest innermost frames")
    parser.add_argument("--cprofile", type=int, metavar="RUNS", help="also profile RUNS hits in process")
    args = parser.parse_args()
    under_load(args.seconds, args.redis, args.top, args.source)
    if args.cprofile:
        isolated(args.cprofile)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
