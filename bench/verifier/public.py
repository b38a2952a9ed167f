"""The public pairs the project may train and tune on (``../shared/datasets``, see its README), as prompts.

Read in place, never copied into the repository. PAWS-Wiki and STS-B are statements, not prompts, so each
pair is also put in a prompt frame (the same frame, or two wordings of one frame, on both sides: the frame
never decides the label). PTB spacing (``Paris , in 1560 .``) is undone, since no user types that.

* PAWS-Wiki dev: ``label`` as given (1 paraphrase, 0 not); families ``paws_para`` / ``paws_neg``.
* STS-B headlines/images: score >= 4.6 is the same question (``stsb_para``), < 4.0 is not (``stsb_neg``: from
  "mostly equivalent, but some unimportant details differ" down); the band between is left out.

Splits are per group: pairs that share a sentence (or a sentence's bag of words: PAWS builds several pairs
from one source sentence by reordering it) are one group, kept in one split.
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from pathlib import Path

from .generate import SPLIT_SHARES, Pair

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "datasets"
STSB_SAME = 4.6
STSB_DIFFERENT = 4.0

#: Frames that keep a statement's meaning as the thing asked about; each tuple is one frame in several wordings.
_FACT = ("Is it true that {s}?", "True or false: {S}", "Fact-check this: {S}", "{S} Is that correct?",
         "Can you verify this claim: {S}")
_EXPLAIN = ("Explain this sentence: {S}", "What does this mean? {S}", "Can you explain the following: {S}")
_NEWS = ("Tell me more about this news: {S}", "What's the story behind this headline: {S}",
         "Give me background on this: {S}")
_IMAGE = ("Generate an image of {s}", "Draw {s}", "Create a picture showing {s}", "Make an image: {s}")
_FRAMES = {"paws": (_FACT, _EXPLAIN), "headlines": (_NEWS, _FACT), "images": (_IMAGE, _EXPLAIN)}


def detokenize(text: str) -> str:
    """``Paris , in 1560 .`` -> ``Paris, in 1560.``, `` ``x'' `` -> ``"x"``."""
    text = text.replace("``", '"').replace("''", '"')
    text = re.sub(r" ([,.;:!?%)\]])", r"\1", text)
    text = re.sub(r"([(\[$]) ", r"\1", text)
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    text = re.sub(r'" ([^"]*?) "', r'"\1"', text)
    return re.sub(r"\s+", " ", text).strip()


def _framed(frame: str, sentence: str) -> str:
    bare = sentence.rstrip(" .")
    lowered = bare[0].lower() + bare[1:] if bare[:2].istitle() or (bare[:1].isupper() and bare[1:2].islower()) else bare
    return frame.replace("{s}", lowered).replace("{S}", sentence)


def _frame_pair(a: str, b: str, genre: str, rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.4:
        return a, b
    frames = rng.choice(_FRAMES[genre])
    first = rng.choice(frames)
    second = first if rng.random() < 0.5 else rng.choice(frames)
    return _framed(first, a), _framed(second, b)


class _Groups:
    """Union-find over sentence keys: pairs sharing any key are one group."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, keys: list[str]) -> str:
        roots = [self.find(k) for k in keys]
        for root in roots[1:]:
            self.parent[root] = roots[0]
        return roots[0]


def _keys(sentence: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", sentence.lower())
    return ["s:" + " ".join(words), "bag:" + " ".join(sorted(words))]


def _split_of(group: str, seed: int) -> str:
    value = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if value < SPLIT_SHARES["test"]:
        return "test"
    if value < SPLIT_SHARES["test"] + SPLIT_SHARES["dev"]:
        return "dev"
    return "train"


def _assign(rows: list[tuple[str, str, str, str, int, str]], seed: int, source: str) -> list[Pair]:
    """rows of (id, a, b, family, label, genre) -> pairs with groups and splits."""
    groups = _Groups()
    for _, a, b, _, _, _ in rows:
        groups.union(_keys(a) + _keys(b))
    rng = random.Random(f"{seed}:{source}")
    pairs = []
    for row_id, a, b, family, label, genre in rows:
        group = f"{source}:{groups.find(_keys(a)[0])}"
        first, second = _frame_pair(a, b, genre, rng)
        if rng.random() < 0.5:
            first, second = second, first
        pairs.append(Pair(id=f"{source}-{row_id}", group=group, source=source, family=family, label=label,
                          a=first, b=second, split=_split_of(group, seed)))
    return pairs


def paws(directory: Path = DEFAULT_DIR, seed: int = 11) -> list[Pair]:
    rows = []
    with (directory / "paws-wiki-dev.tsv").open(encoding="utf-8") as handle:
        for fields in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(fields) != 4 or not fields[3].strip().isdigit():
                continue
            label = int(fields[3])
            rows.append((fields[0], detokenize(fields[1]), detokenize(fields[2]),
                         "paws_para" if label else "paws_neg", label, "paws"))
    return _assign(rows, seed, "paws")


def stsb(directory: Path = DEFAULT_DIR, seed: int = 11) -> list[Pair]:
    rows = []
    with (directory / "stsb-headlines-images.tsv").open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for number, row in enumerate(reader):
            score = float(row["score"])
            if STSB_DIFFERENT <= score < STSB_SAME:
                continue
            label = int(score >= STSB_SAME)
            rows.append((f"{row['split']}{number}", row["sentence1"].strip(), row["sentence2"].strip(),
                         "stsb_para" if label else "stsb_neg", label, row["genre"]))
    return _assign(rows, seed, "stsb")
