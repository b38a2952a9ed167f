"""What the verifier and the embedding cost per call, in process (run by hand; never a test).

    python -m bench.verifier.latency [--calls 300] [--threads 1 2]

* the verifier on 1 and 5 candidates (one ``score`` call, candidates run one by one as the proxy does),
  int8 (shipped) and float32 (``build/verifier-fp32.onnx``, if exported), at each ``--threads``;
* the embedding of one short prompt with the embedder the proxy runs in process (ONNX Runtime float32), and
  with the int8 variant of the same graph (``embedding_service.onnx_backend``'s internal ``int8`` option),
  with the agreement of the two on the dev prompts (lowest and 1st-percentile cosine).

p50/p99 over ``--calls`` calls after a warm-up, sequential, on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from proxy.semantic.verifier import MODEL_FILE, OnnxVerifier, bundled_model_dir

from .dataset import BUILD, read


def timed(call: Callable[[], object], calls: int, warmup: int = 20) -> tuple[float, float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def _cycling(call: Callable[[int], object], size: int) -> Callable[[], object]:
    """``call(i)`` with i = 0, 1, 2, ... modulo ``size``: every call gets new input, so no cache helps."""
    counter = iter(range(10**9))
    return lambda: call(next(counter) % size)


def verifier_figures(pairs: list[tuple[str, str]], calls: int, threads: list[int]) -> None:
    print("## Verifier, one score() call (ms)")
    models = [("int8", bundled_model_dir(), MODEL_FILE)]
    if (BUILD / "verifier-fp32.onnx").is_file():
        models.append(("fp32", BUILD, "verifier-fp32.onnx"))
    for label, directory, file in models:
        for n_threads in threads:
            verifier = OnnxVerifier(directory, model_file=file, threads=n_threads)
            if directory == BUILD and not (BUILD / "verifier.json").is_file():
                continue
            verifier.load()
            for candidates in (1, 5):
                p50, p99 = timed(_cycling(lambda start, k=candidates, v=verifier: v.score(pairs[start:start + k]),
                                          len(pairs) - candidates), calls)
                print(f"{label} threads={n_threads} candidates={candidates}: p50 {p50:6.2f}  p99 {p99:6.2f}  "
                      f"(per candidate p50 {p50 / candidates:5.2f})", flush=True)


def embedding_figures(prompts: list[str], calls: int, threads: list[int]) -> None:
    from embedding_service.model import SentenceEncoder

    print("\n## Embedding one short prompt, in process (ms)")
    vectors: dict[str, np.ndarray] = {}
    for variant in ("fp32", "int8"):
        for n_threads in threads:
            encoder = SentenceEncoder(backend="onnx", onnx_threads=n_threads, onnx_int8=variant == "int8")
            encoder.load()
            if encoder.backend != "onnx":
                print(f"{variant}: ONNX not used ({encoder.onnx_error})")
                continue
            p50, p99 = timed(_cycling(lambda i, e=encoder: e.encode([prompts[i]]), len(prompts)), calls)
            print(f"{variant} threads={n_threads}: p50 {p50:6.2f}  p99 {p99:6.2f}", flush=True)
            if variant not in vectors:
                vectors[variant] = np.asarray(encoder.encode(prompts), dtype=np.float32)
    if len(vectors) == 2:
        agreement = np.sum(vectors["fp32"] * vectors["int8"], axis=1)
        print(f"int8 vs fp32 on {len(prompts)} dev prompts: cosine min {agreement.min():.4f}, "
              f"1st percentile {np.percentile(agreement, 1):.4f}, median {np.median(agreement):.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=BUILD / "pairs.jsonl")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--skip-embedding", action="store_true")
    args = parser.parse_args(argv)
    dev = [p for p in read(args.pairs) if p.split == "dev" and p.source == "generated"]
    pairs = [(p.a, p.b) for p in dev[:2000]]
    verifier_figures(pairs, args.calls, args.threads)
    if not args.skip_embedding:
        prompts = sorted({p.a for p in dev} | {p.b for p in dev})[:2000]
        embedding_figures(prompts, args.calls, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
