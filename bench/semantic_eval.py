"""How often the semantic tier answers a paraphrase, and how rarely it answers the wrong question.

    .venv/bin/python -m bench.semantic_eval [--threshold T] [--embedding-url URL] [--json out.json]
    .venv/bin/python -m bench.semantic_eval --splits [bench.verifier.http_eval options]
    .venv/bin/python -m bench.semantic_eval --splits --offline [bench.verifier.evaluate options]

``--splits`` is the evidence: the held-out **test** split of ``bench/verifier`` (generated look-alike
prompts by template, PAWS-Wiki and STS-B by source sentence; ``python -m bench.verifier.dataset`` builds
it) sent through a real proxy's HTTP API at the shipped defaults, each pair in its own namespace, reported
per family (:mod:`bench.verifier.http_eval`). ``--splits --offline`` scores it offline with raw cosine,
the guards and the verifier, the rule tuned on dev only, with the trade-off curve
(:mod:`bench.verifier.evaluate`). What follows below reads ``bench/data/`` only: a regression set, written
alongside the guards, not evidence of how the tier does on prompts it has never seen; its HTTP run is the
guards-only tier (``SEMANTIC_VERIFIER=off``) at 0.9.

Reads the labelled pairs in ``bench/data/semantic_pairs.jsonl`` (``a`` is stored, ``b`` is asked; ``kind``
is ``paraphrase`` — should hit — or a kind of hard negative that must not: ``entity``, ``number``,
``negation``, ``swapped_roles``, ``word_order``, ``opposite``, ``substitution``, ``context``), then:

1. **End to end, over HTTP** at the threshold the proxy ships with (or ``--threshold``): starts the upstream
   simulator and a real proxy (semantic tier on, embedded store under a temporary DATA_DIR, the model
   in-process unless ``--embedding-url``), and for each pair sends ``a`` (a miss, stored in the background),
   waits until it is stored, sends ``b`` and reads ``x-cache``/``x-cache-tier``/``x-cache-similarity``.
   Each pair gets its own ``x-cache-namespace`` so pairs never see each other's entries; a ``context`` pair
   sends its own earlier turns with each prompt.
2. **Offline, for the curve and the ablation**: the same model's cosine for each pair and the same guard
   functions the tier calls, at every threshold and with each guard left out. The offline decision at the
   shipped threshold is checked against what the proxy did (``agreement`` in the report).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from proxy.semantic import guards, shared_encoder  # noqa: E402
from proxy.semantic.tier import GUARDED_THRESHOLD  # noqa: E402

DATA = ROOT / "bench" / "data" / "semantic_pairs.jsonl"
MODEL = "gpt-4o-mini"
NEGATIVE_KINDS = ("entity", "number", "negation", "swapped_roles", "word_order", "opposite", "substitution",
                  "context")
CURVE = [round(0.70 + 0.02 * i, 2) for i in range(15)]


@dataclass
class Pair:
    id: str
    kind: str
    a: str
    b: str
    split: str
    history_a: list[dict[str, str]] = field(default_factory=list)
    history_b: list[dict[str, str]] = field(default_factory=list)
    cosine: float = 0.0
    http_hit: bool | None = None
    http_similarity: float | None = None

    @property
    def positive(self) -> bool:
        return self.kind == "paraphrase"

    @property
    def same_scope(self) -> bool:
        return self.history_a == self.history_b

    def hit(self, threshold: float, guard_set: Iterable[str] | None = guards.GUARDS) -> bool:
        """What the tier decides for this pair, offline: same scope, above the threshold, no guard refusing."""
        if not self.same_scope or self.cosine < threshold:
            return False
        if guard_set is None:
            return True
        return guards.refusal(self.a, self.b, self.cosine, list(guard_set)) is None


def load(path: Path) -> list[Pair]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            pairs.append(Pair(id=row["id"], kind=row["kind"], a=row["a"], b=row["b"], split=row["split"],
                              history_a=row.get("history_a", []), history_b=row.get("history_b", [])))
    return pairs


def embed_offline(pairs: list[Pair]) -> None:
    encoder = shared_encoder()
    encoder.load()
    a = encoder.encode([p.a for p in pairs])
    b = encoder.encode([p.b for p in pairs])
    for pair, va, vb in zip(pairs, a, b, strict=True):
        pair.cosine = float(sum(x * y for x, y in zip(va, vb, strict=True)))


# -- the HTTP run -----------------------------------------------------------------------------------


def run_http(pairs: list[Pair], threshold: float | None, embedding_url: str | None, *, progress: int = 0,
             **overrides: Any) -> dict[str, Any]:
    """Each pair through a real proxy (``threshold`` None: the shipped one; ``overrides``: other settings)."""
    from tests.support.proxy import ProxyServer, proxy_settings
    from tests.support.servers import SimulatorServer

    with tempfile.TemporaryDirectory(prefix="cachegate-eval-") as tmp, SimulatorServer() as sim:
        settings = proxy_settings(sim.base_url, Path(tmp), semantic_mode="serve", semantic_threshold=threshold,
                                  embedding_timeout=5.0, **({"embedding_url": embedding_url} if embedding_url else {}),
                                  **overrides)
        proxy = ProxyServer(settings)
        proxy.startup_timeout = 120.0  # loads the embedding model and the verifier on a shared machine
        proxy.start()
        tier: Any = proxy.parts.semantic
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=proxy.base_url, timeout=30,
                              headers={"authorization": "Bearer sk-eval"}) as client:
                for number, pair in enumerate(pairs, start=1):
                    headers = {"x-cache-namespace": f"eval-{pair.id}"}
                    first = client.post("/chat/completions", headers=headers, json=_body(pair.a, pair.history_a))
                    if first.status_code != 200 or first.headers.get("x-cache") != "MISS":
                        raise RuntimeError(f"{pair.id}: storing 'a' answered {first.status_code} "
                                           f"{first.headers.get('x-cache')}")
                    _wait(lambda n=number: tier.stats.get("stored", 0) >= n, f"{pair.id} stored")
                    second = client.post("/chat/completions", headers=headers, json=_body(pair.b, pair.history_b))
                    second.raise_for_status()
                    pair.http_hit = second.headers.get("x-cache-tier") == "semantic"
                    similarity = second.headers.get("x-cache-similarity")
                    pair.http_similarity = float(similarity) if similarity else None
                    if progress and number % progress == 0:
                        print(f"  {number}/{len(pairs)} pairs, {time.perf_counter() - started:.0f} s", flush=True)
        finally:
            proxy.stop()
        return {"seconds": round(time.perf_counter() - started, 1), "stats": dict(tier.stats),
                "upstream_calls": sim.state.chat_calls}


def _body(text: str, history: list[dict[str, str]]) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                         *history, {"role": "user", "content": text}]}


def _wait(condition: Any, what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {limit}s")
        time.sleep(0.002)


# -- the report -------------------------------------------------------------------------------------


def rates(pairs: list[Pair], decide: Any) -> dict[str, Any]:
    positives = [p for p in pairs if p.positive]
    negatives = [p for p in pairs if not p.positive]
    true_hits = sum(1 for p in positives if decide(p))
    false_hits = sum(1 for p in negatives if decide(p))
    hits = true_hits + false_hits
    return {"paraphrase_hit_rate": true_hits / len(positives) if positives else 0.0,
            "false_hit_rate": false_hits / len(negatives) if negatives else 0.0,
            "precision": true_hits / hits if hits else 1.0, "true_hits": true_hits, "false_hits": false_hits,
            "paraphrases": len(positives), "negatives": len(negatives)}


def report(pairs: list[Pair], threshold: float, http: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"threshold": threshold, "pairs": len(pairs), "kinds": dict(Counter(p.kind for p in pairs))}
    shipped = rates(pairs, lambda p: p.hit(threshold))
    out["offline"] = shipped
    if http is not None:
        out["http"] = {**rates(pairs, lambda p: bool(p.http_hit)), **http}
        disagree = [p.id for p in pairs if bool(p.http_hit) != p.hit(threshold)]
        out["agreement"] = {"pairs": len(pairs) - len(disagree), "disagree": disagree}
    out["by_split"] = {split: rates([p for p in pairs if p.split == split], lambda p: p.hit(threshold))
                       for split in sorted({p.split for p in pairs})}
    decided = (lambda p: bool(p.http_hit)) if http is not None else (lambda p: p.hit(threshold))
    out["by_kind"] = {kind: {"pairs": sum(1 for p in pairs if p.kind == kind),
                             "hits": sum(1 for p in pairs if p.kind == kind and decided(p)),
                             "raw_cosine_at_threshold": sum(1 for p in pairs if p.kind == kind
                                                            and p.same_scope and p.cosine >= threshold)}
                      for kind in _kinds(pairs)}
    out["curve"] = [{"threshold": t, "raw": rates(pairs, lambda p, t=t: p.hit(t, None)),
                     "guarded": rates(pairs, lambda p, t=t: p.hit(t))} for t in CURVE]
    out["guards"] = ablation(pairs, threshold)
    return out


def _kinds(pairs: list[Pair]) -> list[str]:
    present = {p.kind for p in pairs}
    known = [kind for kind in ("paraphrase", *NEGATIVE_KINDS) if kind in present]
    return known + sorted(present - set(known))


def ablation(pairs: list[Pair], threshold: float) -> list[dict[str, Any]]:
    """For each guard at ``threshold``: what it refuses among candidates (negatives and paraphrases), what only
    it refuses, and the rates with it left out."""
    rows = []
    above = [p for p in pairs if p.same_scope and p.cosine >= threshold]
    refusals = {p.id: guards.refusals(p.a, p.b, p.cosine) for p in above}
    for name in guards.GUARDS:
        others = [g for g in guards.GUARDS if g != name]
        without = rates(pairs, lambda p, others=others: p.hit(threshold, others))
        by_kind: dict[str, int] = defaultdict(int)
        for p in above:
            if name in refusals[p.id] and not p.positive:
                by_kind[p.kind] += 1
        rows.append({
            "guard": name,
            "negatives_refused": sum(1 for p in above if not p.positive and name in refusals[p.id]),
            "negatives_only_this_guard": sum(1 for p in above if not p.positive and refusals[p.id] == [name]),
            "paraphrases_refused": sum(1 for p in above if p.positive and name in refusals[p.id]),
            "without_it": without,
            "refused_by_kind": dict(by_kind),
        })
    return rows


def print_report(out: dict[str, Any], pairs: list[Pair], verbose: bool) -> None:
    t = out["threshold"]
    print(f"# Semantic tier evaluation — {out['pairs']} pairs, threshold {t}")
    print("kinds: " + ", ".join(f"{k} {v}" for k, v in out["kinds"].items()))
    for label in ("http", "offline"):
        if label in out:
            r = out[label]
            extra = f" ({out['http']['seconds']} s)" if label == "http" else ""
            print(f"\n## {'End to end over HTTP' if label == 'http' else 'Offline (same model, same guards)'}{extra}")
            print(f"paraphrase hit rate {_pct(r['paraphrase_hit_rate'])} ({r['true_hits']}/{r['paraphrases']}), "
                  f"false hits on hard negatives {_pct(r['false_hit_rate'])} ({r['false_hits']}/{r['negatives']}), "
                  f"precision {_pct(r['precision'])}")
    if "agreement" in out:
        print(f"offline decision = proxy decision for {out['agreement']['pairs']}/{out['pairs']} pairs"
              + (f" (differ: {', '.join(out['agreement']['disagree'])})" if out["agreement"]["disagree"] else ""))
    print("\n## Per kind at the threshold (hits; raw cosine alone would hit)")
    print(f"{'kind':<14} {'pairs':>5} {'hits':>5} {'rate':>7} {'raw':>5}")
    for kind, row in out["by_kind"].items():
        print(f"{kind:<14} {row['pairs']:>5} {row['hits']:>5} {_pct(row['hits'] / row['pairs']):>7} "
              f"{row['raw_cosine_at_threshold']:>5}")
    print("\n## By split")
    for split, r in out["by_split"].items():
        print(f"{split:<5} paraphrase hits {_pct(r['paraphrase_hit_rate'])}, false hits {_pct(r['false_hit_rate'])}, "
              f"precision {_pct(r['precision'])}")
    print("\n## Curve: raw cosine vs cosine + guards")
    print(f"{'thr':>5} | {'raw para':>8} {'raw FP':>7} {'raw prec':>8} | {'para':>6} {'FP':>6} {'prec':>6}")
    for row in out["curve"]:
        raw, guarded = row["raw"], row["guarded"]
        print(f"{row['threshold']:>5.2f} | {_pct(raw['paraphrase_hit_rate']):>8} {_pct(raw['false_hit_rate']):>7} "
              f"{_pct(raw['precision']):>8} | {_pct(guarded['paraphrase_hit_rate']):>6} "
              f"{_pct(guarded['false_hit_rate']):>6} {_pct(guarded['precision']):>6}")
    print(f"\n## What each guard does at {t} (candidates above the threshold)")
    print(f"{'guard':<13} {'neg refused':>11} {'only it':>7} {'para lost':>9} | without it: {'para':>6} {'FP':>6} "
          f"{'prec':>6}  refused by kind")
    for row in out["guards"]:
        w = row["without_it"]
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(row["refused_by_kind"].items()))
        print(f"{row['guard']:<13} {row['negatives_refused']:>11} {row['negatives_only_this_guard']:>7} "
              f"{row['paraphrases_refused']:>9} |             {_pct(w['paraphrase_hit_rate']):>6} "
              f"{_pct(w['false_hit_rate']):>6} {_pct(w['precision']):>6}  {kinds}")
    if verbose:
        decided = (lambda p: bool(p.http_hit)) if "http" in out else (lambda p: p.hit(t))
        print("\n## False hits")
        for p in pairs:
            if not p.positive and decided(p):
                print(f"  {p.id} {p.cosine:.3f}: {p.a!r} -> {p.b!r}")
        print("\n## Paraphrases above the threshold refused by a guard")
        for p in pairs:
            if p.positive and p.cosine >= t and not p.hit(t):
                print(f"  {p.id} {p.cosine:.3f} {guards.refusals(p.a, p.b, p.cosine)}: {p.a!r} -> {p.b!r}")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--splits" in argv and "--offline" in argv:
        from bench.verifier import evaluate

        return evaluate.main([a for a in argv if a not in ("--splits", "--offline")])
    if "--splits" in argv:
        from bench.verifier import http_eval

        return http_eval.main([a for a in argv if a != "--splits"])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=GUARDED_THRESHOLD,
                        help="similarity threshold of the guards-only tier this set was written for")
    parser.add_argument("--pairs", type=Path, default=DATA, help="labelled pairs (JSON lines)")
    parser.add_argument("--embedding-url", help="use this embedding service instead of the in-process model")
    parser.add_argument("--offline", action="store_true", help="skip the HTTP run (curve and ablation only)")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="list false hits and refused paraphrases")
    args = parser.parse_args(argv)
    pairs = load(args.pairs)
    embed_offline(pairs)
    # the regression set measures the guards (what it was written alongside): the verifier is off here
    http = None if args.offline else run_http(pairs, args.threshold, args.embedding_url, semantic_verifier="off")
    out = report(pairs, args.threshold, http)
    print_report(out, pairs, args.verbose)
    if args.json:
        out["pairs_detail"] = [{"id": p.id, "kind": p.kind, "cosine": round(p.cosine, 4), "http_hit": p.http_hit,
                                "http_similarity": p.http_similarity,
                                "refusals": guards.refusals(p.a, p.b, p.cosine)} for p in pairs]
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
