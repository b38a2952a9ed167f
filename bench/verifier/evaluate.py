"""The whole tier's decision, measured per family: raw cosine, today's guards, and the verifier.

    python -m bench.verifier.evaluate [--pairs bench/verifier/build/pairs.jsonl] [--json out.json]

A pair is *answered from the cache* when the stored prompt ``a`` is found by the vector search
(cosine >= the search threshold), no guard in front refuses it, and the verifier scores it at or above its
threshold. The rule (search threshold, which guards stay in front, verifier threshold) is chosen on the
**dev** split only: the most paraphrase hits with look-alike false hits <= ``--max-false`` and precision >=
``--min-precision`` on dev. Figures reported as evidence are the **test** split's, per family; the curve
(paraphrase hits against false hits over the verifier threshold) is printed for dev and test.
``bench/data/*.jsonl`` is scored too, as a regression set only: it was written alongside the guards.

Cosines come from the embedder the proxy runs (``proxy.semantic.shared_encoder``), the guards are
``proxy.semantic.guards`` and the verifier is the shipped ONNX model through ``proxy.semantic.verifier``,
so the offline decision is the one the tier makes. Embeddings and scores are cached under ``build/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from proxy.semantic import guards
from proxy.semantic.verifier import OnnxVerifier

from .dataset import BUILD, read
from .generate import POSITIVE_FAMILIES

ROOT = Path(__file__).resolve().parents[2]
REGRESSION = (ROOT / "bench" / "data" / "semantic_pairs.jsonl", ROOT / "bench" / "data" / "semantic_holdout.jsonl")
SEARCH_THRESHOLDS = (0.70, 0.75, 0.78, 0.80, 0.82, 0.85, 0.88, 0.90)
VERIFIER_THRESHOLDS = tuple(round(x, 3) for x in (*np.arange(0.05, 0.95, 0.05), 0.96, 0.97, 0.98, 0.99, 0.995))
#: Guard sets that may stay in front of the verifier. "cheap" are the lexical facts a cross-encoder is known
#: to be weakest on (digits, names, negation cues) and that cost microseconds.
GUARD_SETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "cheap": ("numbers", "names", "negation"),
    "cheap+opposites": ("numbers", "names", "negation", "opposites"),
    "all-but-substitution": tuple(g for g in guards.GUARDS if g != "substitution"),
    "all": guards.GUARDS,
}
#: Families that are not look-alikes (different prompts on different subjects): left out of the false-hit rate.
NOT_LOOKALIKE = frozenset({"unrelated"})


@dataclass
class Scored:
    id: str
    family: str
    label: int
    split: str
    a: str
    b: str
    group: str = ""
    cosine: float = 0.0
    score: float = 0.0
    refusals: tuple[str, ...] = ()
    same_scope: bool = True


@dataclass(frozen=True)
class Rule:
    search: float
    guard_set: str
    verifier: float | None  # None: no verifier

    def hit(self, p: Scored) -> bool:
        if not p.same_scope or p.cosine < self.search:
            return False
        kept = GUARD_SETS[self.guard_set]
        if any(r in kept for r in p.refusals):
            return False
        return self.verifier is None or p.score >= self.verifier

    def describe(self) -> str:
        verifier = "no verifier" if self.verifier is None else f"verifier >= {self.verifier}"
        return f"cosine >= {self.search}, guards {self.guard_set}, {verifier}"


# -- scoring ----------------------------------------------------------------------------------------


def _cache_name(texts: Iterable[str], what: str) -> Path:
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    return BUILD / f"{what}-{digest}.npy"


def add_cosines(pairs: list[Scored], *, onnx_int8: bool = True) -> None:
    """Each pair's cosine, its prompts embedded as the proxy embeds a lookup: one prompt a call (ONNX
    Runtime, int8 unless ``onnx_int8`` is off, as ``EMBEDDING_ONNX_INT8``)."""
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    cache = _cache_name([f"one a call; onnx_int8={onnx_int8}", *texts], "embeddings")
    if cache.is_file():
        vectors = np.load(cache)
    else:
        from proxy.semantic import shared_encoder

        encoder = shared_encoder(onnx_int8=onnx_int8)
        encoder.load()
        vectors = np.asarray([encoder.encode([text])[0] for text in texts], dtype=np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    index = {text: i for i, text in enumerate(texts)}
    for p in pairs:
        p.cosine = float(vectors[index[p.a]] @ vectors[index[p.b]])


def add_refusals(pairs: list[Scored]) -> None:
    for p in pairs:
        p.refusals = tuple(guards.refusals(p.a, p.b, p.cosine))


def add_scores(pairs: list[Scored], verifier: OnnxVerifier, model_tag: str) -> None:
    keys = [f"{p.a}\x00{p.b}" for p in pairs]
    cache = _cache_name([model_tag, *keys], "scores")
    if cache.is_file():
        scores = np.load(cache)
    else:
        scores = np.array(verifier.score([(p.a, p.b) for p in pairs]), dtype=np.float64)
        np.save(cache, scores)
    for p, s in zip(pairs, scores, strict=True):
        p.score = float(s)


# -- rates ----------------------------------------------------------------------------------------


def rates(pairs: Sequence[Scored], decide: Callable[[Scored], bool]) -> dict[str, Any]:
    positives = [p for p in pairs if p.label == 1]
    lookalikes = [p for p in pairs if p.label == 0 and p.family not in NOT_LOOKALIKE]
    negatives = [p for p in pairs if p.label == 0]
    true_hits = sum(1 for p in positives if decide(p))
    false_hits = sum(1 for p in negatives if decide(p))
    lookalike_hits = sum(1 for p in lookalikes if decide(p))
    hits = true_hits + false_hits
    return {"paraphrase_hits": true_hits / len(positives) if positives else 0.0,
            "false_hits": lookalike_hits / len(lookalikes) if lookalikes else 0.0,
            "precision": true_hits / hits if hits else 1.0, "true": true_hits, "false": false_hits,
            "positives": len(positives), "lookalikes": len(lookalikes)}


def family_table(pairs: Sequence[Scored], rules: dict[str, Callable[[Scored], bool]]) -> list[dict[str, Any]]:
    rows = []
    families = sorted({p.family for p in pairs}, key=lambda f: (f not in POSITIVE_FAMILIES and
                                                                not f.endswith("_para"), f))
    for family in families:
        members = [p for p in pairs if p.family == family]
        row: dict[str, Any] = {"family": family, "label": members[0].label, "pairs": len(members)}
        for name, decide in rules.items():
            row[name] = sum(1 for p in members if decide(p)) / len(members)
        rows.append(row)
    return rows


def tune(dev: Sequence[Scored], max_false: float, min_precision: float) -> list[tuple[dict[str, Any], Rule]]:
    """Every rule on the grid that meets the dev constraints, best (most paraphrase hits) first."""
    found = []
    for search in SEARCH_THRESHOLDS:
        for guard_set in GUARD_SETS:
            for verifier in VERIFIER_THRESHOLDS:
                rule = Rule(search, guard_set, verifier)
                r = rates(dev, rule.hit)
                if r["false_hits"] <= max_false and r["precision"] >= min_precision:
                    found.append((r, rule))
    found.sort(key=lambda item: (-item[0]["paraphrase_hits"], item[0]["false_hits"], -item[1].search))
    return found


# -- data -----------------------------------------------------------------------------------------


def load_pairs(path: Path) -> list[Scored]:
    return [Scored(id=p.id, family=p.family, label=p.label, split=p.split, a=p.a, b=p.b, group=p.group)
            for p in read(path) if p.split in ("dev", "test")]


def load_regression() -> list[Scored]:
    out = []
    for path in REGRESSION:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            out.append(Scored(id=row["id"], family=row["kind"], label=int(row["kind"] == "paraphrase"),
                              split="regression", a=row["a"], b=row["b"],
                              same_scope=row.get("history_a", []) == row.get("history_b", [])))
    return out


def _pct(value: float) -> str:
    return f"{100 * value:5.1f}%"


def print_rates(label: str, r: dict[str, Any]) -> None:
    print(f"{label:<58} paraphrase hits {_pct(r['paraphrase_hits'])} ({r['true']}/{r['positives']})  "
          f"look-alike false hits {_pct(r['false_hits'])}  precision {r['precision']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=BUILD / "pairs.jsonl")
    parser.add_argument("--model-dir", type=Path, help="directory of verifier-int8.onnx (default: the bundled one)")
    parser.add_argument("--model-file", default="verifier-int8.onnx")
    parser.add_argument("--max-false", type=float, default=0.01, help="dev look-alike false-hit budget")
    parser.add_argument("--min-precision", type=float, default=0.98, help="dev precision floor")
    parser.add_argument("--rule", help="evaluate this rule instead of the dev-tuned one: SEARCH,GUARDS,VERIFIER")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--stack", action="store_true", help="also try a logistic regression over the features")
    parser.add_argument("--embedding-fp32", action="store_true",
                        help="embed with the float32 ONNX graph (EMBEDDING_ONNX_INT8=false) instead of int8")
    parser.add_argument("--dev-only", action="store_true",
                        help="print dev figures only (choosing a checkpoint or a model file never looks at test)")
    args = parser.parse_args(argv)
    verifier = OnnxVerifier(args.model_dir, model_file=args.model_file, threads=2)
    pairs = load_pairs(args.pairs)
    regression = load_regression()
    if args.dev_only:  # test is neither scored nor shown
        pairs, regression = [p for p in pairs if p.split == "dev"], []
    everything = pairs + regression
    add_cosines(everything, onnx_int8=not args.embedding_fp32)
    add_refusals(everything)
    model_path = (args.model_dir or Path(str(verifier_dir()))) / args.model_file
    add_scores(everything, verifier, hashlib.sha256(model_path.read_bytes()).hexdigest())
    dev = [p for p in pairs if p.split == "dev"]
    test = [p for p in pairs if p.split == "test"]
    candidates = tune(dev, args.max_false, args.min_precision)
    if args.rule:
        search, guard_set, threshold = args.rule.split(",")
        chosen = Rule(float(search), guard_set, float(threshold))
    elif candidates:
        chosen = candidates[0][1]
    else:  # nothing meets both: keep the false-hit budget, drop the precision floor
        candidates = tune(dev, args.max_false, 0.0)
        if not candidates:
            print("no rule on the grid meets the dev false-hit budget")
            return 1
        print(f"no rule reaches precision {args.min_precision} on dev: the false-hit budget alone decides")
        chosen = candidates[0][1]
    baselines = {"raw@0.9": Rule(0.9, "none", None), "guards@0.9": Rule(0.9, "all", None),
                 "verifier@0.9": Rule(0.9, chosen.guard_set, chosen.verifier), "chosen": chosen}
    report: dict[str, Any] = {"chosen": chosen.describe(), "constraints": {"max_false": args.max_false,
                                                                          "min_precision": args.min_precision}}
    print(f"# The tier's decision — chosen on dev: {chosen.describe()}\n")
    print("## Top dev rules (dev figures)")
    for r, rule in candidates[:8]:
        print_rates(rule.describe(), r)
    shown = (("dev", dev), ("test", test), ("regression (bench/data, not evidence)", regression))
    for split_name, split in (s for s in shown if s[1]):
        print(f"\n## {split_name}")
        for name, rule in baselines.items():
            r = rates(split, rule.hit)
            report.setdefault(split_name.split()[0], {})[name] = r
            print_rates(f"{name}: {rule.describe()}", r)
    print(f"\n## {'Dev' if args.dev_only else 'Test'} split per family (share answered from the cache)")
    decide = {name: rule.hit for name, rule in baselines.items()}
    table = family_table(dev if args.dev_only else test, decide)
    report["dev_by_family" if args.dev_only else "test_by_family"] = table
    print(f"{'family':<16} {'label':>5} {'pairs':>6} " + " ".join(f"{n:>13}" for n in decide))
    for row in table:
        print(f"{row['family']:<16} {row['label']:>5} {row['pairs']:>6} " + " ".join(f"{_pct(row[n]):>13}"
                                                                                 for n in decide))
    print(f"\n## Curve over the verifier threshold (search {chosen.search}, guards {chosen.guard_set})")
    print(f"{'verifier':>8} | {'dev para':>8} {'dev FP':>7} {'dev prec':>8} | {'test para':>9} {'test FP':>7} "
          f"{'test prec':>9}")
    curve = []
    for threshold in VERIFIER_THRESHOLDS:
        rule = Rule(chosen.search, chosen.guard_set, threshold)
        d, t = rates(dev, rule.hit), rates(test or dev, rule.hit)
        curve.append({"verifier": threshold, "dev": d, "test": t})
        print(f"{threshold:>8} | {_pct(d['paraphrase_hits']):>8} {_pct(d['false_hits']):>7} {d['precision']:>8.3f} | "
              f"{_pct(t['paraphrase_hits']):>9} {_pct(t['false_hits']):>7} {t['precision']:>9.3f}")
    report["curve"] = curve
    if args.stack:
        stacking_experiment(dev, args.max_false, args.min_precision)
    shown_split = dev if args.dev_only else test
    above = [p for p in shown_split if p.cosine >= chosen.search]
    print(f"\n{'dev' if args.dev_only else 'test'} pairs with a candidate above the search threshold (the verifier "
          f"runs): {len(above)}/{len(shown_split)} ({_pct(len(above) / len(shown_split))})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def stacking_experiment(dev: Sequence[Scored], max_false: float, min_precision: float) -> None:
    """Would a small learned combination of the verifier's logit, the cosine and the guards' verdicts beat the
    hand rule? Both are fitted on one half of dev (by group) and compared on the other half."""
    from sklearn.linear_model import LogisticRegression

    def half(p: Scored) -> int:
        return int(hashlib.sha256(p.group.encode()).hexdigest(), 16) % 2

    def features(p: Scored) -> list[float]:
        logit = float(np.log(max(p.score, 1e-6) / max(1 - p.score, 1e-6)))
        return [logit, p.cosine, *(float(g in p.refusals) for g in guards.GUARDS)]

    fit = [p for p in dev if half(p) == 0]
    held = [p for p in dev if half(p) == 1]
    model = LogisticRegression(C=1.0, max_iter=1000).fit([features(p) for p in fit], [p.label for p in fit])
    prob = {id(p): float(model.predict_proba([features(p)])[0, 1]) for p in dev}
    best_rule = tune(fit, max_false, min_precision)
    print("\n## Stacking experiment (fit on half of dev, compared on the other half)")
    if best_rule:
        print_rates(f"hand rule {best_rule[0][1].describe()}", rates(held, best_rule[0][1].hit))
    for search in (0.75, 0.8, 0.85):
        options = []
        for threshold in np.arange(0.5, 1.0, 0.01):
            r = rates(fit, lambda p, s=search, t=threshold: p.cosine >= s and prob[id(p)] >= t)
            if r["false_hits"] <= max_false and r["precision"] >= min_precision:
                options.append((r["paraphrase_hits"], float(threshold)))
        if options:
            threshold = max(options)[1]
            print_rates(f"stacked LR, cosine >= {search}, p >= {threshold:.2f}",
                        rates(held, lambda p, s=search, t=threshold: p.cosine >= s and prob[id(p)] >= t))


def verifier_dir() -> Path:
    from proxy.semantic.verifier import bundled_model_dir

    return bundled_model_dir()


if __name__ == "__main__":
    sys.exit(main())
