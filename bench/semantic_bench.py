"""Latency of the semantic tier, run by hand.

    .venv/bin/python -m bench.semantic_bench [--requests 200] [--sizes 10000 100000] [--skip-http]
                                             [--skip-store] [--embedding]

1. **Semantic hit, end to end**: a proxy process (``cachegate serve``, SEMANTIC_MODE=serve, the defaults:
   model in-process, qdrant-edge under DATA_DIR) in front of the upstream simulator; ``--requests`` prompts
   are stored, then a paraphrase of each is asked once (every one a semantic hit, every one embedded anew:
   no two texts repeat). p50/p99 of the whole response as the client sees it.
2. **Added latency on a miss**: unique prompts through a proxy with the tier off and one with it on; the
   difference of the p50s is what embedding + search cost a request that misses (the store write happens
   after the answer is sent).
3. **Lookup at 10k and 100k entries** on the embedded store: synthetic unit vectors with payloads the size
   of real ones, bulk-loaded, indexed (the time to index is reported), then searched within one scope
   holding every entry (the worst case: one app, one system prompt) and within one of 1,000 scopes.
4. ``--embedding``: the embedding service's throughput at 1, 8 and 32 concurrent clients
   (runs ``bench/embedding_bench.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import median, pct, proxy, sequential_ms, simulator  # noqa: E402
from proxy.cache.entry import CachedResponse  # noqa: E402
from proxy.contracts import SemanticRecord  # noqa: E402
from proxy.semantic.edge import EdgeBackend  # noqa: E402

TOPICS = ["password", "invoice", "refund", "shipping", "account", "subscription", "login", "order", "warranty",
          "delivery", "discount", "receipt", "profile", "address", "payment", "upgrade"]
STORED = "How do I reset the {t} settings for project number {i}?"
ASKED = "How can I reset the {t} settings of project number {i}?"
OTHER = "Write a short note about the {t} backlog item {i} for the weekly report."


def body(text: str) -> bytes:
    return orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})


def summary(label: str, values: list[float]) -> str:
    return f"{label:<38} p50 {median(values):7.2f} ms   p99 {pct(values, 99):7.2f} ms   (n={len(values)})"


def wait_entries(client: httpx.Client, url: str, count: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        stats = client.get(url + "/admin/stats").json()
        semantic = (stats.get("cache") or {}).get("semantic") or stats.get("semantic") or {}
        if (semantic.get("entries") or 0) >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{count} semantic entries were not stored within {limit}s")


def http_figures(requests: int) -> None:
    print("\n## End to end (proxy process, model in-process, qdrant-edge)")
    stored = [body(STORED.format(t=TOPICS[i % len(TOPICS)], i=i)) for i in range(requests)]
    asked = [body(ASKED.format(t=TOPICS[i % len(TOPICS)], i=i)) for i in range(requests)]
    with simulator() as sim:
        upstream = sim.url + "/v1"
        with proxy(upstream, SEMANTIC_MODE="serve") as on, httpx.Client(timeout=30) as client:
            url = on.url + "/v1/chat/completions"
            sequential_ms(client, url, [body(f"warm up {i}") for i in range(20)])
            sequential_ms(client, url, stored)
            wait_entries(client, on.url, requests + 20)
            hits = []
            for payload in asked:
                started = time.perf_counter()
                response = client.post(url, content=payload, headers={"content-type": "application/json"})
                hits.append((time.perf_counter() - started) * 1000)
                if response.headers.get("x-cache-tier") != "semantic":
                    raise RuntimeError(f"expected a semantic hit, got {response.headers.get('x-cache')}")
            print(summary("semantic hit (whole response)", hits))
            misses_on = sequential_ms(client, url, [body(OTHER.format(t=t, i=i)) for i, t in
                                                    enumerate(TOPICS * (requests // len(TOPICS) + 1))][:requests])
        with proxy(upstream, SEMANTIC_MODE="off") as off, httpx.Client(timeout=30) as client:
            url = off.url + "/v1/chat/completions"
            sequential_ms(client, url, [body(f"warm up {i}") for i in range(20)])
            misses_off = sequential_ms(client, url, [body(OTHER.format(t=t, i=i) + " (off)") for i, t in
                                                     enumerate(TOPICS * (requests // len(TOPICS) + 1))][:requests])
    print(summary("miss, semantic tier on", misses_on))
    print(summary("miss, semantic tier off", misses_off))
    print(f"{'added latency on a miss (p50 on - off)':<38} {median(misses_on) - median(misses_off):7.2f} ms")


def entry_payload() -> str:
    message = {"role": "assistant", "content": "An answer of about average length. " * 12}
    completion = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                  "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                  "usage": {"prompt_tokens": 20, "completion_tokens": 90, "total_tokens": 110}}
    entry = CachedResponse.from_completion(completion, model="gpt-4o-mini", stored_at=time.time(), ttl=86_400)
    return base64.b64encode(entry.encode()).decode()


def unit_vector(rng: random.Random, dim: int = 384) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(dim)]
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


async def store_figures(size: int, queries: int = 500) -> None:
    rng = random.Random(size)
    payload = entry_payload()
    with tempfile.TemporaryDirectory(prefix="cachegate-bench-edge-") as tmp:
        backend = EdgeBackend(Path(tmp) / "cachegate", timeout=5.0)
        await backend.ensure_ready(384)
        started = time.perf_counter()
        expires = time.time() + 86_400
        for start in range(0, size, 1000):
            batch = [SemanticRecord(id=str(uuid.uuid4()), vector=unit_vector(rng),
                                    scope="one-app" if i % 2 == 0 else f"tenant-{i % 1000}",
                                    expires_at=expires,
                                    payload={"text": f"prompt number {i} about {TOPICS[i % 16]}", "text_hash": "x",
                                             "model": "gpt-4o-mini", "namespace": "-", "entry": payload})
                     for i in range(start, min(size, start + 1000))]
            await backend.upsert_many(batch)
        loaded = time.perf_counter() - started
        before = await _search_times(backend, rng, "one-app", queries // 5)
        started = time.perf_counter()
        await backend.maintain()
        indexed = time.perf_counter() - started
        points, indexed_vectors = await backend.index_status()
        one_scope = await _search_times(backend, rng, "one-app", queries)
        small_scope = await _search_times(backend, rng, "tenant-7", queries)
        await backend.aclose()
    print(f"\n## qdrant-edge at {size:,} entries ({points:,} points, {indexed_vectors:,} indexed; loaded in "
          f"{loaded:.1f} s, indexed in {indexed:.1f} s on one core)")
    print(summary(f"search, scope of {size // 2:,}, unindexed", before))
    print(summary(f"search, scope of {size // 2:,}, indexed", one_scope))
    print(summary(f"search, scope of {size // 2000:,}", small_scope))


async def _search_times(backend: EdgeBackend, rng: random.Random, scope: str, n: int) -> list[float]:
    now = time.time()
    times = []
    for _ in range(n):
        query = unit_vector(rng)
        started = time.perf_counter()
        await backend.search(query, scope, limit=5, now=now)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--embedding", action="store_true", help="also run bench/embedding_bench.py")
    args = parser.parse_args(argv)
    print("# Semantic tier benchmark (2-core machine figures in the README)")
    if not args.skip_http:
        http_figures(args.requests)
    if not args.skip_store:
        for size in args.sizes:
            asyncio.run(store_figures(size))
    if args.embedding:
        print("\n## Embedding service throughput (bench/embedding_bench.py)", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "embedding_bench.py"), "--seconds", "10",
                        "--concurrency", "1", "8", "32"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
