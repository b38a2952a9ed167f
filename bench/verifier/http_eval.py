"""The held-out test split through the proxy's HTTP API at the shipped defaults, per family.

    python -m bench.semantic_eval --splits [--pairs bench/verifier/build/pairs.jsonl] [--split test]
                                           [--per-family N] [--verifier-threshold T] [--json out.json]

Starts the upstream simulator and a real proxy (``SEMANTIC_MODE=serve`` and every other semantic setting at
its default: the verifier on, its threshold the shipped model's, the search threshold the tier's; model
in-process, qdrant-edge under a temporary DATA_DIR) and, for each pair, in its own ``x-cache-namespace``:
asks ``a`` (a miss, stored in the background), waits until it is stored, asks ``b``. A semantic HIT on ``b``
is the cache claiming that ``a``'s answer answers ``b``. This is what :mod:`bench.verifier.evaluate`
decides offline, made by the running proxy instead (embedding, search, guards, verifier, timeout).

Rates are the offline ones: paraphrase hits over the pairs labelled 1; look-alike false hits over the pairs
labelled 0 but ``unrelated`` (different subjects are not look-alikes); precision over every hit.
``--per-family N`` keeps the first N pairs of each family (a quicker, smaller run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import semantic_eval

from .dataset import BUILD, read
from .evaluate import NOT_LOOKALIKE

POSITIVE = "paraphrase"  # semantic_eval's kind for a pair that should hit


def rates(rows: list[tuple[str, int, bool]]) -> dict[str, Any]:
    """``rows``: (family, label, hit) per pair."""
    positives = [hit for _, label, hit in rows if label == 1]
    lookalikes = [hit for family, label, hit in rows if label == 0 and family not in NOT_LOOKALIKE]
    negatives = [hit for _, label, hit in rows if label == 0]
    true_hits, false_hits = sum(positives), sum(negatives)
    hits = true_hits + false_hits
    return {"paraphrase_hits": true_hits / len(positives) if positives else 0.0,
            "false_hits": sum(lookalikes) / len(lookalikes) if lookalikes else 0.0,
            "precision": true_hits / hits if hits else 1.0, "true": true_hits, "false": false_hits,
            "positives": len(positives), "lookalikes": len(lookalikes), "pairs": len(rows)}


def by_family(rows: list[tuple[str, int, bool]]) -> list[dict[str, Any]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    labels: dict[str, int] = {}
    for family, label, hit in rows:
        groups[family].append(hit)
        labels[family] = label
    order = sorted(groups, key=lambda f: (labels[f] == 0, f))
    return [{"family": f, "label": labels[f], "pairs": len(groups[f]), "hits": sum(groups[f]),
             "answered": sum(groups[f]) / len(groups[f])} for f in order]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=BUILD / "pairs.jsonl")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--per-family", type=int, default=0, help="first N pairs of each family (0: all)")
    parser.add_argument("--threshold", type=float, help="SEMANTIC_THRESHOLD (default: unset, the shipped one)")
    parser.add_argument("--verifier-threshold", type=float, help="SEMANTIC_VERIFIER_THRESHOLD (default: unset)")
    parser.add_argument("--verifier", choices=("on", "off"), default="on", help="SEMANTIC_VERIFIER")
    parser.add_argument("--embedding-url", help="use this embedding service instead of the in-process model")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    pairs = [p for p in read(args.pairs) if p.split == args.split]
    if args.per_family:
        kept: dict[str, int] = defaultdict(int)
        chosen = []
        for p in pairs:
            if kept[p.family] < args.per_family:
                kept[p.family] += 1
                chosen.append(p)
        pairs = chosen
    asked = [semantic_eval.Pair(id=p.id, kind=POSITIVE if p.label == 1 else p.family, a=p.a, b=p.b, split=p.split)
             for p in pairs]
    overrides: dict[str, Any] = {"semantic_verifier": args.verifier}
    if args.verifier_threshold is not None:
        overrides["semantic_verifier_threshold"] = args.verifier_threshold
    print(f"# {args.split} split through the HTTP API: {len(pairs)} pairs, {len({p.family for p in pairs})} "
          f"families; SEMANTIC_THRESHOLD {args.threshold or 'unset'}, SEMANTIC_VERIFIER {args.verifier}, "
          f"SEMANTIC_VERIFIER_THRESHOLD {args.verifier_threshold or 'unset'}", flush=True)
    http = semantic_eval.run_http(asked, args.threshold, args.embedding_url, progress=500, **overrides)
    rows = [(p.family, p.label, bool(q.http_hit)) for p, q in zip(pairs, asked, strict=True)]
    headline, table = rates(rows), by_family(rows)
    print(f"\n{len(pairs)} pairs in {http['seconds']} s; upstream calls {http['upstream_calls']}")
    print(f"paraphrases answered from the cache {100 * headline['paraphrase_hits']:.1f}% "
          f"({headline['true']}/{headline['positives']}), look-alikes answered anyway "
          f"{100 * headline['false_hits']:.1f}% (of {headline['lookalikes']}), precision {headline['precision']:.3f}")
    print(f"\n{'family':<16} {'label':>5} {'pairs':>6} {'hits':>5} {'answered':>9}")
    for row in table:
        print(f"{row['family']:<16} {row['label']:>5} {row['pairs']:>6} {row['hits']:>5} "
              f"{100 * row['answered']:>8.1f}%")
    stats = http["stats"]
    print("\ntier counters: " + ", ".join(f"{k} {stats[k]}" for k in sorted(stats)))
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "settings": overrides, "headline": headline,
                                         "by_family": table, "http": http}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
