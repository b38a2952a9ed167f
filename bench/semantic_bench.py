"""Latency of the semantic tier, run by hand.

    .venv/bin/python -m bench.semantic_bench [--requests 200] [--sizes 10000 100000] [--skip-http]
                                             [--skip-store] [--embedding] [--versus CHECKOUT]

1. **Side by side, taking turns** (one client, sequential): proxy processes of this checkout
   (``python -m proxy`` with PYTHONPATH here; model in-process, qdrant-edge under DATA_DIR) in front of the
   upstream simulator: the tier with the verifier (the default), the same with the float32 embedding graph
   (``EMBEDDING_ONNX_INT8=false``), the tier with the guards alone at the same search threshold, and the tier
   off; with ``--versus``, the default of another checkout (``git worktree add /tmp/before <commit>``); and
   the simulator called directly. ``--requests`` prompts are stored in every semantic tier, then a
   paraphrase of each is asked of each in turn: a semantic hit's p50 with and without the verifier (the
   difference: the verifier per candidate over HTTP), and the paraphrases the verifier refuses (a miss that
   read one candidate).
2. **A miss with no candidate**: unique prompts far from every stored one, one to each in
   turn: the tier's overhead on a miss (on - off), each over calling the upstream directly, and that the
   verifier read no candidate for them (its per-day book in ``/metrics/semantic``, an exact count).
   Then the verifier in process, one thread, one candidate a call.
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
import contextlib
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import interleaved_ms, median, pct, proxy, sequential_ms, simulator  # noqa: E402
from proxy.cache.entry import CachedResponse  # noqa: E402
from proxy.contracts import SemanticRecord  # noqa: E402
from proxy.semantic.edge import EdgeBackend  # noqa: E402
from proxy.semantic.tier import VERIFIED_THRESHOLD  # noqa: E402
from proxy.semantic.verifier import OnnxVerifier  # noqa: E402

TOPICS = ["password", "invoice", "refund", "shipping", "account", "subscription", "login", "order", "warranty",
          "delivery", "discount", "receipt", "profile", "address", "payment", "upgrade"]
STORED = "How do I reset the {t} settings for project {i}?"
ASKED = "What are the steps to reset the {t} settings for project {i}?"
OTHER = "Write a short note about the {t} backlog item {i} for the weekly report."


def body(text: str) -> bytes:
    return orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})


def summary(label: str, values: list[float]) -> str:
    return f"{label:<38} p50 {median(values):7.2f} ms   p99 {pct(values, 99):7.2f} ms   (n={len(values)})"


def wait_entries(client: httpx.Client, url: str, count: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if (client.get(url + "/metrics/semantic").json().get("entries") or 0) >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{count} semantic entries were not stored within {limit}s")


def semantic_metrics(client: httpx.Client, url: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(url + "/metrics/semantic").json()
    return body


def verifier_candidates(client: httpx.Client, url: str) -> int:
    """How many candidates the verifier has read since the proxy started (its per-day book)."""
    return sum(day["candidates"] for day in (semantic_metrics(client, url).get("verifier") or {}).get("days", []))


def post_ms(client: httpx.Client, url: str, payload: bytes) -> tuple[float, str]:
    """One request's whole-response latency (ms) and what answered it (``semantic``, ``exact`` or ``miss``)."""
    started = time.perf_counter()
    response = client.post(url, content=payload, headers={"content-type": "application/json"})
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.headers.get("x-cache-tier") or "miss"


def http_figures(requests: int, versus: Path | None = None) -> None:
    """Proxy processes of this checkout side by side, one client, sequential, taking turns: the tier with
    the verifier (the default), the same with the float32 embedding graph, the tier with the guards alone at
    the same search threshold, and the tier off; with ``versus``, the default of that checkout too; and the
    simulator called directly."""
    print("\n## End to end (proxy processes of this checkout, model in-process, qdrant-edge), taking turns")
    semantic: dict[str, tuple[Path, dict[str, str]]] = {
        "verifier": (ROOT, {}),
        "verifier, fp32 embedding": (ROOT, {"EMBEDDING_ONNX_INT8": "false"}),
        "guards only": (ROOT, {"SEMANTIC_VERIFIER": "off", "SEMANTIC_THRESHOLD": str(VERIFIED_THRESHOLD)}),
    }
    if versus is not None:
        semantic[f"verifier, {versus.name}"] = (versus, {})
    with simulator() as sim, contextlib.ExitStack() as stack, httpx.Client(timeout=30) as client:
        upstream = sim.url + "/v1"
        servers = {name: stack.enter_context(proxy(upstream, source=source, SEMANTIC_MODE="serve", **env))
                   for name, (source, env) in semantic.items()}
        off = stack.enter_context(proxy(upstream, source=ROOT, SEMANTIC_MODE="off"))
        urls = {name: server.url + "/v1/chat/completions" for name, server in servers.items()}
        urls |= {"tier off": off.url + "/v1/chat/completions", "upstream direct": upstream + "/chat/completions"}
        for name, url in urls.items():
            sequential_ms(client, url, [body(f"warm up {name} {i}") for i in range(20)])
        for name, server in servers.items():
            sequential_ms(client, urls[name], [body(STORED.format(t=TOPICS[i % len(TOPICS)], i=i))
                                               for i in range(requests)])
            wait_entries(client, server.url, requests + 20)
        # 1. paraphrases of stored prompts: a semantic hit where the verifier accepts (one candidate read)
        times: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
        for i in range(requests):
            payload = body(ASKED.format(t=TOPICS[i % len(TOPICS)], i=i))
            for name in times:
                elapsed, tier = post_ms(client, urls[name], payload)
                times[name].setdefault(tier, []).append(elapsed)
        print(f"paraphrases asked: {requests} per proxy")
        for name, by_tier in times.items():
            for tier, values in sorted(by_tier.items()):
                label = "semantic hit" if tier == "semantic" else "miss (candidate refused)"
                print(summary(f"{name}: {label}", values))
        hits_v, hits_g = times["verifier"].get("semantic", []), times["guards only"].get("semantic", [])
        if hits_v and hits_g:
            print(f"{'verifier per candidate, over HTTP':<38} {median(hits_v) - median(hits_g):7.2f} ms "
                  "(p50 hit with the verifier - p50 hit with the guards alone)")
        # 2. prompts with no candidate above the search threshold: what the tier costs every such miss
        verified = servers["verifier"]
        read_before = verifier_candidates(client, verified.url)
        counter = iter(range(10**9))

        def other() -> bytes:
            n = next(counter)
            return body(OTHER.format(t=TOPICS[n % len(TOPICS)], i=n))

        misses = interleaved_ms(client, urls, other, requests, warmup=0)
        read = verifier_candidates(client, verified.url) - read_before
    print(f"\nmisses with no candidate, taking turns ({requests} rounds; the verifier read {read} candidates "
          "for them)")
    for name, values in misses.items():
        print(summary(f"miss: {name}", values))
    direct = median(misses["upstream direct"])
    overhead = median(misses["verifier"]) - median(misses["tier off"])
    print(f"{'tier overhead on a miss (on - off)':<38} {overhead:7.2f} ms")
    print(f"{'proxy over the upstream, tier on':<38} {median(misses['verifier']) - direct:7.2f} ms")
    print(f"{'proxy over the upstream, tier off':<38} {median(misses['tier off']) - direct:7.2f} ms")
    print(f"{'verifier on a miss with no candidate':<38} "
          f"{median(misses['verifier']) - median(misses['guards only']):7.2f} ms (verifier - guards only; noise)")
    for name in misses:
        if name.startswith("verifier, "):
            print(f"{'tier overhead on a miss, ' + name.removeprefix('verifier, '):<38} "
                  f"{median(misses[name]) - median(misses['tier off']):7.2f} ms")
    verifier_in_process(requests)


def verifier_in_process(requests: int) -> None:
    """The shipped cross-encoder on one thread (as the tier runs it), one candidate a call."""
    verifier = OnnxVerifier(threads=1)
    verifier.load()
    pairs = [(STORED.format(t=TOPICS[i % len(TOPICS)], i=i), ASKED.format(t=TOPICS[i % len(TOPICS)], i=i))
             for i in range(requests)]
    verifier.score(pairs[:10])
    values = []
    for pair in pairs:
        started = time.perf_counter()
        verifier.score([pair])
        values.append((time.perf_counter() - started) * 1000)
    print(summary("verifier per candidate, in process", values))


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
    parser.add_argument("--versus", type=Path, help="also a proxy of this checkout (before/after in one run)")
    args = parser.parse_args(argv)
    print("# Semantic tier benchmark (2-core machine figures in the README)")
    if not args.skip_http:
        http_figures(args.requests, args.versus)
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
