"""Throughput and latency of the embedding service, run by hand.

    .venv/bin/python bench/embedding_bench.py [--seconds 10] [--concurrency 1 8 32] [--client raw|httpx]
    .venv/bin/python bench/embedding_bench.py --in-process [--batches 1 2 4 8 16 32] [--rounds 30]

Starts ``python -m embedding_service`` in a subprocess on a free loopback port (EMBED_* variables of this
shell apply, e.g. EMBED_BATCH_WINDOW_MS=5), waits for /health, then for each concurrency level runs that
many clients, each sending one prompt per request back to back, and prints prompts/s and p50/p99 latency.

The default ``raw`` client speaks minimal keep-alive HTTP/1.1 over asyncio streams: client and service
share this machine's cores, and httpx's per-request cost would be measured as service slowness.

``--in-process`` instead times :meth:`SentenceEncoder.encode` itself for each backend (torch fp32, torch
bf16 where the CPU has it natively, ONNX Runtime fp32) at each batch size: p50/p99 per call and texts/s
at the p50. Backends take turns in short blocks, so a change in the machine's load hits all of them alike.
This is how the ``EMBED_BACKEND=auto`` crossover (``EMBED_ONNX_MAX_BATCH``) was chosen.

Wall-clock rates depend on whatever else runs on the machine, so each row also shows the CPU time the
service and this client spent per prompt (Linux /proc) and how busy all cores were: a row measured with
"machine busy" near 100% while service + client used well under the cores' capacity was held back by
other work, and cores / (service + client CPU per prompt) bounds what an idle machine would do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
SUBJECTS = ["password", "invoice", "refund", "shipping", "account", "subscription", "login", "order",
            "warranty", "delivery", "discount", "receipt", "profile", "address", "payment", "upgrade"]
TEMPLATES = ["How do I reset my {s} number {i}?", "What is the status of my {s} request {i}?",
             "Can you explain the {s} policy for customers who joined in year {i}?",
             "Why was my {s} declined yesterday after I tried {i} times?",
             "Please summarise the {s} terms in plain English for a new user, case {i}."]

Send = Callable[[bytes], Awaitable[None]]


HEADER = (f"{'clients':>7} {'requests':>9} {'prompts/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'svc cpu ms/prompt':>18} {'client cpu ms/prompt':>21} {'mean batch':>10} {'machine busy':>12}")


@dataclass
class LevelResult:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    service_cpu: float = 0.0  # CPU seconds the service process used while measured
    client_cpu: float = 0.0  # CPU seconds this benchmark process used while measured
    mean_batch: float = 0.0  # texts per model call, from the service's /health counters
    machine_busy: float = 0.0  # share of all cores busy, whoever used them (other work skews results)

    def row(self) -> str:
        ordered = sorted(self.latencies) or [float("nan")]
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = len(self.latencies) / self.seconds
        service_ms, client_ms = (cpu * 1000 / max(1, len(self.latencies))
                                 for cpu in (self.service_cpu, self.client_cpu))
        return (f"{self.clients:>7} {len(self.latencies):>9} {rate:>10.1f} {p50:>8.1f} {p99:>8.1f} "
                f"{self.errors:>6} {service_ms:>18.2f} {client_ms:>21.2f} {self.mean_batch:>10.1f} "
                f"{self.machine_busy:>11.0%}")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all cores since boot (Linux /proc/stat; zeros elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def prompt(counter: int) -> bytes:
    text = TEMPLATES[counter % len(TEMPLATES)].format(s=SUBJECTS[counter % len(SUBJECTS)], i=counter)
    return orjson.dumps({"input": [text]})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def raw_sender(port: int, path: str) -> tuple[Send, Callable[[], None]]:
    """A keep-alive HTTP/1.1 POST over one connection, parsing only what the service sends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"

    async def send(body: bytes) -> None:
        writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        if b" 200 " not in status_line:
            raise RuntimeError(status_line.decode().strip())

    return send, writer.close


async def httpx_sender(port: int, path: str) -> tuple[Send, Callable[[], None]]:
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)

    async def send(body: bytes) -> None:
        response = await client.post(path, content=body, headers={"content-type": "application/json"})
        response.raise_for_status()

    def close() -> None:
        asyncio.get_running_loop().create_task(client.aclose())

    return send, close


async def run_level(port: int, pid: int, path: str, clients: int, seconds: float,
                    client_kind: str) -> LevelResult:
    make = raw_sender if client_kind == "raw" else httpx_sender
    senders = [await make(port, path) for _ in range(clients)]
    result = LevelResult(clients=clients, seconds=seconds)
    counter = iter(range(10**9))

    async def client(send: Send, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            body = prompt(next(counter))
            started = time.perf_counter()
            try:
                await send(body)
            except Exception:
                result.errors += record
                continue
            if record:
                result.latencies.append(time.perf_counter() - started)

    warm_until = time.perf_counter() + 1.0  # let batches settle before measuring
    await asyncio.gather(*(client(send, warm_until, False) for send, _ in senders))
    batches_before, texts_before = await batch_counters(port)
    cpu_before, (busy_before, total_before) = process_cpu_seconds(pid), machine_cpu()
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(send, started + seconds, True) for send, _ in senders))
    result.seconds = time.perf_counter() - started
    result.service_cpu = process_cpu_seconds(pid) - cpu_before
    result.client_cpu = time.process_time() - client_before
    busy_after, total_after = machine_cpu()
    result.machine_busy = (busy_after - busy_before) / max(1.0, total_after - total_before)
    batches_after, texts_after = await batch_counters(port)
    result.mean_batch = (texts_after - texts_before) / max(1, batches_after - batches_before)
    for _, close in senders:
        close()
    return result


async def batch_counters(port: int) -> tuple[int, int]:
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"http://127.0.0.1:{port}/health")).json()
    return int(health["batches"]), int(health["texts"])


def wait_healthy(port: int, process: subprocess.Popen[bytes], limit: float = 180.0) -> dict[str, object]:
    """The /health body once it says ok."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with code {process.returncode}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            if response.status_code == 200:
                health: dict[str, object] = response.json()
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service was not healthy within {limit}s")


def in_process(batches: list[int], rounds: int, cache_dir: str | None) -> None:
    """p50/p99 of one encode() call per backend and batch size, backends interleaved in blocks."""
    sys.path.insert(0, str(ROOT))
    from embedding_service.model import SentenceEncoder, cpu_has_native_bf16

    configs = {"torch fp32": {"backend": "torch", "precision": "fp32"}}
    if cpu_has_native_bf16():
        configs["torch bf16"] = {"backend": "torch", "precision": "bf16"}
    configs["onnx fp32"] = {"backend": "onnx"}
    encoders = {}
    for label, options in configs.items():
        encoder = SentenceEncoder(cache_dir=cache_dir, **options)
        encoder.load()
        if label.startswith("onnx") and encoder.backend != "onnx":
            raise SystemExit(f"ONNX Runtime did not load: {encoder.onnx_error}")
        encoders[label] = encoder
    times: dict[tuple[str, int], list[float]] = {(label, n): [] for label in encoders for n in batches}
    counter = iter(range(10**9))
    load_before, (busy_before, total_before) = os.getloadavg(), machine_cpu()
    for _ in range(rounds):
        for n in batches:
            for label, encoder in encoders.items():
                for call in range(1 + max(2, 16 // n)):  # the first call of a block is not recorded
                    texts = [orjson.loads(prompt(next(counter)))["input"][0] for _ in range(n)]
                    started = time.perf_counter()
                    encoder.encode(texts)
                    if call:
                        times[label, n].append(time.perf_counter() - started)
    busy_after, total_after = machine_cpu()
    busy = (busy_after - busy_before) / max(1.0, total_after - total_before)
    print(f"in-process encode(), {rounds} rounds; load average {load_before[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; machine busy {busy:.0%}")
    print(f"{'texts':>5} " + " ".join(f"{label + ' p50/p99 ms':>24} {'texts/s':>8}" for label in encoders))
    for n in batches:
        cells = []
        for label in encoders:
            ordered = sorted(times[label, n])
            p50, p99 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            cells.append(f"{f'{p50 * 1000:.2f} / {p99 * 1000:.2f}':>24} {n / p50:>8.0f}")
        print(f"{n:>5} " + " ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--path", default="/embed", choices=["/embed", "/v1/embeddings"])
    parser.add_argument("--in-process", action="store_true", help="time encode() per backend, no service")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32],
                        help="--in-process: texts per call")
    parser.add_argument("--rounds", type=int, default=30, help="--in-process: rounds over all backends")
    args = parser.parse_args(argv)
    if args.in_process:
        in_process(args.batches, args.rounds, os.environ.get("EMBED_CACHE_DIR") or None)
        return 0

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "embedding_service", "--port", str(port),
                                "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        loading = time.perf_counter()
        health = wait_healthy(port, process)
        print(f"service healthy after {time.perf_counter() - loading:.1f}s on port {port}; "
              f"backend={health.get('backend')} precision={health.get('precision')} "
              f"load={os.getloadavg()[0]:.2f} "
              f"window={os.environ.get('EMBED_BATCH_WINDOW_MS', '2')}ms client={args.client}")
        print(HEADER)
        for clients in args.concurrency:
            result = asyncio.run(run_level(port, process.pid, args.path, clients, args.seconds, args.client))
            print(result.row(), flush=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
