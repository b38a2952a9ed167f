"""Shared benchmark plumbing: start the simulator and proxies as separate processes, drive them with wrk.

Every server runs in its own process so the load tool, the proxy and the upstream do not share a GIL;
wrk is the one load tool for every figure (Debian's ``wrk``; installed on demand when running as root).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.servers import RedisServer, SubprocessServer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install wrk")
    return found


@contextmanager
def simulator() -> Iterator[SubprocessServer]:
    with SubprocessServer([sys.executable, "-m", "tests.support.simulator", "--port", "{port}"],
                          health_path="/bare", cwd=str(ROOT)) as server:
        yield server


@contextmanager
def bare(*, plain: bool = False) -> Iterator[SubprocessServer]:
    """The bare ASGI endpoint of :mod:`bench.bare_server`: on the proxy's server stack, or ``plain`` uvicorn."""
    command = [sys.executable, "-m", "bench.bare_server", "--port", "{port}", *(["--plain"] if plain else [])]
    with SubprocessServer(command, health_path="/", cwd=str(ROOT)) as server:
        yield server


@contextmanager
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@contextmanager
def proxy(upstream: str, *, source: Path | None = None, **env: str) -> Iterator[SubprocessServer]:
    """A proxy in its own process; ``source``: run the ``proxy`` package of another checkout instead (for
    before/after figures in one run: ``git worktree add /tmp/before <commit>``)."""
    with tempfile.TemporaryDirectory(prefix="cachegate-bench-") as data:
        settings = {"UPSTREAM_BASE_URL": upstream, "DATA_DIR": data, "LOG_PATH": str(Path(data) / "requests.log"),
                    "SEMANTIC_MODE": "off", "LOG_LEVEL": "warning", **env}
        command = [str(BIN / "cachegate"), "serve", "--port", "{port}"]
        if source is not None:
            command = [sys.executable, "-m", "proxy", "--port", "{port}"]
            settings["PYTHONPATH"] = str(source)
        with SubprocessServer(command, env=settings, health_path="/health", startup_timeout=120,
                              cwd=str(source) if source is not None else None) as server:
            yield server


_LATENCY = re.compile(r"^\s+(50|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, body: bytes | None = None, connections: int = 32, seconds: int = 10,
        headers: dict[str, str] | None = None, threads: int = 1) -> dict[str, float]:
    """Run wrk against ``url``; returns req/s and p50/p90/p99 in milliseconds. One wrk thread by default:
    on two cores a second one takes CPU from the server it measures."""
    lines = []
    if body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]",
                  'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in (headers or {}).items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        out = subprocess.run([ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                              script.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    result = {"rps": float(_RPS.search(out).group(1))}  # type: ignore[union-attr]
    for pct, value, unit in _LATENCY.findall(out):
        result[f"p{pct}"] = float(value) * _UNIT[unit]
    return result


def sequential_ms(client: httpx.Client, url: str, bodies: list[bytes], *, first_byte: bool = False,
                  headers: dict[str, str] | None = None) -> list[float]:
    """Latency of each request in turn (ms): whole response, or time to the first body byte.

    The body is always read to its end, as a client does: hanging up after the first byte would close
    the connection (and, behind a proxy, the proxy's connection to the upstream too), so every next
    request would pay for new connections that a real client does not.
    """
    out = []
    for body in bodies:
        started = time.perf_counter()
        first: float | None = None
        with client.stream("POST", url, content=body,
                           headers={"content-type": "application/json", **(headers or {})}) as response:
            for _ in response.iter_raw():
                if first is None:
                    first = time.perf_counter()
            ended = time.perf_counter()
            out.append(((first if first_byte and first is not None else ended) - started) * 1000)
            response.raise_for_status()
    return out


def interleaved_ms(client: httpx.Client, urls: dict[str, str], make_body: Callable[[], bytes], samples: int, *,
                   first_byte: bool = False, warmup: int = 30) -> dict[str, list[float]]:
    """:func:`sequential_ms` for several URLs in turn, one request each per round, so that drift on the
    machine (another process waking up, the CPU clock) touches them all alike; ``warmup`` rounds unmeasured."""
    out: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(warmup + samples):
        for name, url in urls.items():
            value = sequential_ms(client, url, [make_body()], first_byte=first_byte)[0]
            if i >= warmup:
                out[name].append(value)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)
