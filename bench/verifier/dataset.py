"""All the pairs the verifier is trained, tuned and tested on, written once with their splits.

    python -m bench.verifier.dataset [--datasets ../shared/datasets] [--seed 11] [--out bench/verifier/build]

Writes ``pairs.jsonl`` (one :class:`~bench.verifier.generate.Pair` a line) and prints the count per source,
family and split. The split of every pair is fixed here, before any model is trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from .augment import augment
from .generate import Pair, generate
from .public import DEFAULT_DIR, paws, stsb

BUILD = Path(__file__).resolve().parent / "build"
SPLITS = ("train", "dev", "test")


def build(datasets: Path = DEFAULT_DIR, seed: int = 11) -> list[Pair]:
    """Generated and public pairs (their splits fixed first), then the training split's augmented pairs."""
    pairs = [*generate(seed), *paws(datasets, seed), *stsb(datasets, seed)]
    return pairs + augment([p for p in pairs if p.split == "train"], seed)


def write(pairs: list[Pair], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps(pair.to_json(), ensure_ascii=False) + "\n")


def read(path: Path = BUILD / "pairs.jsonl") -> list[Pair]:
    with path.open(encoding="utf-8") as handle:
        return [Pair(**json.loads(line)) for line in handle if line.strip()]


def check_groups(pairs: list[Pair]) -> None:
    """No group (template, or public source sentence) is in two splits."""
    seen: dict[str, str] = {}
    for pair in pairs:
        if seen.setdefault(pair.group, pair.split) != pair.split:
            raise AssertionError(f"group {pair.group} is in {seen[pair.group]} and {pair.split}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DIR, help="the shared public pair data")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=BUILD)
    args = parser.parse_args(argv)
    pairs = build(args.datasets, args.seed)
    check_groups(pairs)
    write(pairs, args.out / "pairs.jsonl")
    counts = Counter((p.source, p.family, p.split) for p in pairs)
    print(f"{len(pairs)} pairs -> {args.out / 'pairs.jsonl'}")
    print(f"{'source':<10} {'family':<16} {'label':>5} " + " ".join(f"{s:>6}" for s in SPLITS))
    for source, family in sorted({(p.source, p.family) for p in pairs}):
        label = next(p.label for p in pairs if p.family == family)
        print(f"{source:<10} {family:<16} {label:>5} " + " ".join(f"{counts[(source, family, s)]:>6}" for s in SPLITS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
