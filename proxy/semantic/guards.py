"""Guards: cheap lexical checks that refuse a semantic candidate whose cosine is high but whose meaning is not
the same. Pure: no I/O, no model.

Sentence embeddings are nearly blind to a handful of edits that change the answer completely: another number
(``2 days`` / ``3 days``), a negation (``can`` / ``can't``, ``safe`` / ``unsafe``), another name (``France``
/ ``Germany``, ``parse_config`` / ``load_config``), an opposite (``increase`` / ``decrease``) and two
arguments that trade places (``Celsius to Fahrenheit`` / ``Fahrenheit to Celsius``, ``does stress cause high
blood pressure`` / ``does high blood pressure cause stress``). Each guard compares one such feature of the
stored prompt and the new one and names itself when they differ. ``bench/semantic_eval.py`` measures what
each one buys and costs.

Every guard is symmetric, so a refused pair is refused whichever of the two prompts was stored first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher

from proxy.semantic.features import (
    ARTICLES,
    NAME_PREFIX_MIN,
    NEGATION_PREFIXES,
    NEGATION_WORDS,
    PREPOSITIONS,
    STOPWORDS,
    SYMMETRIC,
    Features,
    features,
    stem,
    word_value,
)

#: Guard names, in the order they are checked (the first that refuses is reported).
GUARDS: tuple[str, ...] = ("numbers", "negation", "names", "opposites", "order", "substitution")

#: Similarity a pair that differs in one replaced word or two (see :func:`substitution`) must reach.
SUBSTITUTION_SIMILARITY = 0.95
MAX_REGIONS = 2
MIN_ADDED = 2

# -- the guards -------------------------------------------------------------------------------------


def numbers_differ(a: Features, b: Features) -> bool:
    return a.numbers != b.numbers


def negation_differs(a: Features, b: Features) -> bool:
    if a.negations != b.negations:
        return True
    return _negated_word(a, b) or _negated_word(b, a)


def _negated_word(a: Features, b: Features) -> bool:
    """``a`` has ``unsafe``/``impossible``/``disconnected`` where ``b`` has ``safe``/``possible``/``connected``."""
    b_stems, b_words = set(b.stems), set(b.words)
    for word, word_stem in zip(a.words, a.stems, strict=True):
        if word_stem in b_stems:
            continue
        for prefix in NEGATION_PREFIXES:
            rest = word[len(prefix):].lstrip("-")
            if word.startswith(prefix) and len(rest) >= 4 and (rest in b_words or stem(rest) in b_stems):
                return True
    return False


def names_differ(a: Features, b: Features) -> bool:
    return not (_names_found(a, b) and _names_found(b, a))


def _names_found(a: Features, b: Features) -> bool:
    """Every name of ``a`` occurs in ``b`` (as a name or a plain word, any case)."""
    for name in a.names:
        if name in b.names or name in b.vocabulary:
            continue
        if " " in name or not name.isalnum():
            if name in " ".join(b.words) or name in b.text.lower():
                continue
            return False
        if not any(_same_name(name, word) for word in b.vocabulary):
            return False
    return True


def _same_name(name: str, word: str) -> bool:
    short, long = (name, word) if len(name) <= len(word) else (word, name)
    return len(short) >= NAME_PREFIX_MIN and long.startswith(short)


def opposites_differ(a: Features, b: Features) -> bool:
    for pair, side in a.opposites - b.opposites:
        if (pair, 1 - side) in b.opposites and (pair, 1 - side) not in a.opposites:
            return True
    return False


def order_differs(a: Features, b: Features) -> bool:
    """Two parts of the prompt traded places around a part that stayed (``X to Y`` / ``Y to X``)."""
    return _exchanged(a, b) or _pivoted(a, b) or _reassigned(a, b)


def _exchanged(a: Features, b: Features) -> bool:
    """``b`` is ``a`` with two spans exchanged, either around a middle that is not a symmetric conjunction
    (``X to Y`` / ``Y to X``) or side by side after a shared beginning (``people who drink coffee sleep
    less`` / ``people who sleep less drink coffee``). A phrase moved to the front (``In Python, ...``) has no
    shared beginning and passes."""
    x = ["a" if s in ARTICLES else s for s in a.stems]
    y = ["a" if s in ARTICLES else s for s in b.stems]
    if x == y or sorted(x) != sorted(y):
        return False
    start = 0
    while x[start] == y[start]:
        start += 1
    end = 0
    while x[-1 - end] == y[-1 - end]:
        end += 1
    mid_x, mid_y = x[start:len(x) - end], y[start:len(y) - end]
    if len(set(a.clauses[start:len(x) - end])) > 1 or len(set(b.clauses[start:len(y) - end])) > 1:
        return False  # clauses in another order ("X? I don't Y." / "I don't Y, X?") are not a swap
    n = len(mid_x)
    for left in range(1, n):
        for right in range(1, n - left + 1):
            first, middle, last = mid_x[:left], mid_x[left:n - right], mid_x[n - right:]
            if mid_y != last + middle + first:
                continue
            if middle and any(t not in SYMMETRIC for t in middle):
                return True
            if not middle and start > 0 and _clause_like(first) and _clause_like(last):
                return True
    return False


def _reassigned(a: Features, b: Features) -> bool:
    """One mention of a participant was given to another one the prompt already names (``when the tenant
    breaks it`` / ``when the landlord breaks it``, both prompts naming tenant and landlord)."""
    x, y = _content(a), _content(b)
    changes = [op for op in SequenceMatcher(None, x, y, autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(changes) != 1 or changes[0][0] != "replace":
        return False
    _, i1, i2, j1, j2 = changes[0]
    if i2 - i1 != 1 or j2 - j1 != 1:
        return False
    old, new = x[i1], y[j1]
    rest_x, rest_y = x[:i1] + x[i2:], y[:j1] + y[j2:]
    return old in rest_x and old in rest_y and new in rest_x and new in rest_y


def _clause_like(span: list[str]) -> bool:
    """Two words or more with a content word, not a prepositional phrase (those move freely: ``in 1969``)."""
    return len(span) >= 2 and span[0] not in PREPOSITIONS and any(t not in STOPWORDS for t in span)


def _pivoted(a: Features, b: Features) -> bool:
    """Two words shared by both prompts are in the other order in ``b``, and a third word that occurs once in
    each prompt is between them in both: they moved across it, as arguments swapping sides of a relation do.
    A phrase moved as a block (``In Python, how ...``) never has such a pivot."""
    pos_a, pos_b = _unique_positions(a.stems), _unique_positions(b.stems)
    shared = [s for s in pos_a if s in pos_b]
    items = [s for s in shared if s not in STOPWORDS or s in a.names]
    pivots = [s for s in shared if s not in SYMMETRIC and s not in ARTICLES]
    for i, first in enumerate(items):
        for second in items[i + 1:]:
            a1, a2, b1, b2 = pos_a[first], pos_a[second], pos_b[first], pos_b[second]
            if (a1 < a2) == (b1 < b2):
                continue
            if a.clauses[a1] != a.clauses[a2] or b.clauses[b1] != b.clauses[b2]:
                continue  # clauses in another order ("X? I don't Y." / "I don't Y, X?") are not a swap
            low_a, high_a = sorted((a1, a2))
            low_b, high_b = sorted((b1, b2))
            for pivot in pivots:
                if low_a < pos_a[pivot] < high_a and low_b < pos_b[pivot] < high_b:
                    return True
    return False


def _unique_positions(stems: tuple[str, ...]) -> dict[str, int]:
    seen: dict[str, int] = {}
    repeated: set[str] = set()
    for index, word in enumerate(stems):
        if word in seen:
            repeated.add(word)
        seen[word] = index
    return {word: index for word, index in seen.items() if word not in repeated}


def _content(f: Features) -> list[str]:
    """Content stems, without numbers and negations (their own guards compare those)."""
    return [s for w, s in zip(f.words, f.stems, strict=True)
            if s not in STOPWORDS and w not in NEGATION_WORDS and not w.endswith("n't")
            and not any(c.isdigit() for c in w) and word_value(w, "") is None]


def substitution(a: Features, b: Features) -> bool:
    """The prompts are the same words but for a small edit: in at most :data:`MAX_REGIONS` places, up to two
    content words replaced (``laptop`` / ``phone``), added or dropped (``Plan a trip to Japan`` / ``... on a
    tight budget``). Whether such an edit keeps the meaning (``exit`` / ``quit``) or not (``coffee`` /
    ``tea``) only the similarity can tell, so the pair must clear :data:`SUBSTITUTION_SIMILARITY` instead of
    the threshold: a small edit that moves the embedding that much changed what is asked."""
    x, y = _content(a), _content(b)
    changes = [op for op in SequenceMatcher(None, x, y, autojunk=False).get_opcodes() if op[0] != "equal"]
    if not changes or len(changes) > MAX_REGIONS:
        return False
    changed = sum(i2 - i1 for _, i1, i2, _, _ in changes)
    if len(x) - changed < 1:
        return False
    for tag, i1, i2, j1, j2 in changes:
        removed, added = i2 - i1, j2 - j1
        if removed > 2 or added > 2:
            return False
        if tag != "replace" and removed + added < MIN_ADDED:
            return False
    return True


_CHECKS = {
    "substitution": substitution,
    "numbers": numbers_differ,
    "negation": negation_differs,
    "names": names_differ,
    "opposites": opposites_differ,
    "order": order_differs,
}


def _refuses(name: str, a: Features, b: Features, similarity: float,
             substitution_similarity: float) -> bool:
    if name == "substitution":
        return similarity < substitution_similarity and substitution(a, b)
    return _CHECKS[name](a, b)


def refusal(stored: str, asked: str, similarity: float, guards: Iterable[str] = GUARDS, *,
            substitution_similarity: float = SUBSTITUTION_SIMILARITY) -> str | None:
    """The name of the first guard that refuses to let ``asked`` be answered with ``stored``'s answer."""
    a, b = features(stored), features(asked)
    for name in guards:
        if _refuses(name, a, b, similarity, substitution_similarity):
            return name
    return None


def refusals(stored: str, asked: str, similarity: float, *,
             substitution_similarity: float = SUBSTITUTION_SIMILARITY) -> list[str]:
    """Every guard that refuses the pair (for measuring what each one does)."""
    a, b = features(stored), features(asked)
    return [name for name in GUARDS if _refuses(name, a, b, similarity, substitution_similarity)]


def describe(text: str) -> Mapping[str, object]:
    """The features of ``text`` as plain data (for logs and the evaluation report)."""
    f = features(text)
    return {"numbers": list(f.numbers), "negations": f.negations, "names": sorted(f.names),
            "opposites": sorted(f.opposites)}
