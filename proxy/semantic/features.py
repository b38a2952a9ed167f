"""What the semantic guards compare, read from a prompt once: its words and their stems, clauses, numbers
(``3``, ``three``, ``third``, ``3rd`` are one number), negation cues, names (proper nouns, acronyms, quoted
strings, code identifiers) and words of the opposite lexicon. Pure: no I/O, no model.

:func:`features` is cached per text (a stored prompt is compared again and again); the guards themselves are
in :mod:`proxy.semantic.guards`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from proxy.semantic.lexicon import OPPOSITE_PAIRS

# -- tokens -----------------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return text.split()


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "`": "`"})
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_SENTENCE_END = frozenset(".?!:;\n")

STOPWORDS = frozenset(_words("""
a an the is are was were be been being am do does did doing done have has had having i me my mine myself you
your yours yourself he him his she her hers it its itself we us our ours they them their theirs this that these
those what which who whom whose when where why how there here of in on at by for with about as into onto to from
up out over under again then once and or but if because so than too very can could will would shall should may
might must just also please some any each both such own same only s t let lets get got tell give show explain
describe write make find help want need like know way kind sort thing things one ones really quite much many
whether while during through between across per via vs versus etc
"""))

#: Tokens around which an exchange of two parts keeps the meaning: ``X and Y`` is ``Y and X``.
SYMMETRIC = frozenset({"and", "or", "vs", "versus", "between", "with", "both", "nor", "plus"})
ARTICLES = frozenset({"a", "an", "the"})
_CLAUSE_END = frozenset(".?!;:,\n")

#: Irregular verb forms, so that ``frozen``/``freeze`` and ``taught``/``teach`` meet in the order guard.
_IRREGULAR = dict(pair.split(":") for pair in _words("""
froze:freeze frozen:freeze taught:teach bought:buy sold:sell ran:run ate:eat eaten:eat wrote:write
written:write gave:give given:give took:take taken:take made:make paid:pay won:win lost:lose bit:bite
bitten:bite began:begin begun:begin knew:know known:know thought:think caught:catch brought:bring
fought:fight found:find felt:feel kept:keep slept:sleep spent:spend built:build sent:send drove:drive
driven:drive fell:fall fallen:fall flew:fly flown:fly grew:grow grown:grow drew:draw drawn:draw threw:throw
thrown:throw wore:wear worn:wear chose:choose chosen:choose spoke:speak spoken:speak broke:break broken:break
stole:steal stolen:steal forgot:forget forgotten:forget went:go gone:go saw:see seen:see told:tell held:hold
met:meet led:lead hid:hide hidden:hide rode:ride ridden:ride sang:sing sung:sing swam:swim swum:swim
"""))
PREPOSITIONS = frozenset(_words("in on at for from with by during about under over near into since until within "
                                 "without through across per via"))

NEGATION_WORDS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor",
                             "without", "except", "excluding", "cannot", "hardly", "barely", "seldom", "rarely"})
NEGATION_PREFIXES = ("non", "dis", "un", "in", "im", "il", "ir")

# -- numbers --------------------------------------------------------------------------------------

_UNITS = {word: value for value, word in enumerate(
    _words("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
           "seventeen eighteen nineteen"))}
_TENS = {word: 10 * (index + 2) for index, word in enumerate(
    _words("twenty thirty forty fifty sixty seventy eighty ninety"))}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_ORDINALS = {word: index + 1 for index, word in enumerate(
    _words("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
           "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"))}
_FRACTIONS = {"half": 0.5, "quarter": 0.25, "dozen": 12, "twice": 2, "double": 2, "triple": 3}
#: ``one`` after these is a pronoun ("a new one"), not a number.
_ONE_AS_PRONOUN_AFTER = frozenset(_words("a an the this that which each any every some another no new old other "
                                         "only good best better right wrong same last next first"))
_DIGITS = re.compile(r"(?<![A-Za-z0-9.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(k|%|percent|st|nd|rd|th)\b)?",
                     re.IGNORECASE)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")

# -- names ------------------------------------------------------------------------------------------

_QUOTED = re.compile(r'"([^"\n]{1,200})"|(?:(?<=^)|(?<=[\s(\[]))\'([^\'\n]{1,200})\'(?=$|[\s.,;:!?)\]])')
_BACKTICKED = re.compile(r"`([^`\n]{1,200})`")
_IDENTIFIER = re.compile(
    r"(?<![\w.])(?:--?[A-Za-z][\w-]*|[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[A-Za-z]\w*\(\)"
    r"|[A-Za-z]*[a-z][A-Z]\w*|\w*_\w+|(?:/[\w.-]+){2,})")
_PRONOUN_I = frozenset({"i", "i'm", "i've", "i'd", "i'll"})
#: A name in one prompt matches a word of the other that it prefixes (``German`` / ``Germany``) when the
#: shorter is at least this long, so ``Java`` never matches ``JavaScript``.
NAME_PREFIX_MIN = 5

# -- opposites ----------------------------------------------------------------------------------------

_PARTICLES = frozenset({"in", "out", "on", "off", "up", "down"})


def normalise_text(text: str) -> str:
    return text.translate(_APOSTROPHES)


@lru_cache(maxsize=20_000)
def stem(word: str) -> str:
    """A deliberately small stemmer: enough that ``sell``/``selling``/``sells`` and ``run``/``running`` meet."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = _IRREGULAR.get(w, w)
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                break
            if suffix == "es" and not w.endswith(("ches", "shes", "xes", "sses", "zes", "oes")):
                continue
            w = w[: -len(suffix)] + keep
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiousl":
        w = w[:-1]  # runn → run, stopp → stop (but not sell, pass)
    if len(w) >= 4 and w.endswith("e"):
        w = w[:-1]  # charge / charging / charged all become charg
    return w


def _opposites() -> dict[str, list[tuple[int, int]]]:
    """word → every (pair, side) it belongs to: ``expensive`` is opposite to ``cheap`` and ``cheapest``."""
    table: dict[str, list[tuple[int, int]]] = {}
    for index, pair in enumerate(OPPOSITE_PAIRS.split()):
        left, right = pair.split(":")
        for side, word in enumerate((left, right)):
            table.setdefault(_opposite_key(word), []).append((index, side))
    return table


def _opposite_key(word: str) -> str:
    return "_".join(stem(part) for part in word.split("_"))


_OPPOSITES = _opposites()


# -- features ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """What the guards compare, extracted once per prompt."""

    text: str
    words: tuple[str, ...]  # lower-cased word tokens, in order
    stems: tuple[str, ...]  # stem of each word (acronyms are not stemmed: HTTPS is not HTTP)
    clauses: tuple[int, ...]  # clause number of each word (clauses end at , ; : . ? ! and newlines)
    numbers: tuple[str, ...]  # canonical numbers, in order
    negations: int  # negation cues (not, n't, never, without, ...)
    names: frozenset[str]  # proper nouns, acronyms, quoted strings, code identifiers (lower-cased)
    opposites: frozenset[tuple[int, int]]  # (pair, side) of each opposite-lexicon word present
    vocabulary: frozenset[str]  # every word, stem and split identifier part (for name look-ups)


@lru_cache(maxsize=20_000)
def features(text: str) -> Features:
    text = normalise_text(text)
    matches = list(_WORD.finditer(text))
    words = tuple(m.group(0).lower() for m in matches)
    stems = tuple(m.group(0).lower() if m.group(0).isupper() and len(m.group(0)) > 1 else stem(w)
                  for m, w in zip(matches, words, strict=True))
    vocabulary = set(words) | set(stems) | {w.removesuffix("'s") for w in words}
    names = _names(text, matches)
    for name in names:
        vocabulary.update(part for part in re.split(r"[^a-z0-9]+", name) if part)
    return Features(
        text=text,
        words=words,
        stems=stems,
        clauses=_clauses(text, matches),
        numbers=_numbers(text, words),
        negations=sum(1 for w in words if w in NEGATION_WORDS or w.endswith("n't")),
        names=frozenset(names),
        opposites=frozenset(_opposite_hits(words)),
        vocabulary=frozenset(vocabulary),
    )


def _clauses(text: str, matches: list[re.Match[str]]) -> tuple[int, ...]:
    numbers, clause, last = [], 0, 0
    for m in matches:
        if any(c in _CLAUSE_END for c in text[last:m.start()]):
            clause += 1
        numbers.append(clause)
        last = m.end()
    return tuple(numbers)


def _numbers(text: str, words: tuple[str, ...]) -> tuple[str, ...]:
    """Numbers in order, written as digits whatever their spelling: ``3``, ``three``, ``third``, ``3rd``."""
    found: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    for m in _TIME.finditer(text):
        found.append((m.start(), f"{int(m.group(1))}:{m.group(2)}"))
        spans.append(m.span())
    for m in _DIGITS.finditer(text):
        if any(start <= m.start() < end for start, end in spans):
            continue
        raw, suffix = m.group(1).replace(",", ""), (m.group(2) or "").lower()
        value = float(raw) * (1000 if suffix == "k" else 1)
        found.append((m.start(), _canonical(value)))
    # number words: "twenty five", "one hundred and five", "a dozen", "third"
    positions = [m.start() for m in _WORD.finditer(text)]
    total: float | None = None
    begin = 0
    for i, word in enumerate(words):
        number = word_value(word, words[i - 1] if i else "", words[i + 1] if i + 1 < len(words) else "")
        if number is None:
            if total is not None and word == "and" and i + 1 < len(words) and word_value(words[i + 1], word):
                continue  # "one hundred and five"
            if total is not None:
                found.append((begin, _canonical(total)))
                total = None
            continue
        kind, amount = number
        if total is None:
            total, begin = amount, positions[i]
        elif kind == "scale":
            total *= amount
        else:
            total += amount
        if kind in {"ordinal", "fraction"}:
            found.append((begin, _canonical(total)))
            total = None
    if total is not None:
        found.append((begin, _canonical(total)))
    return tuple(number for _, number in sorted(found))


def word_value(word: str, previous: str, following: str = "x") -> tuple[str, float] | None:
    if word in _UNITS:
        if word == "one" and (previous in _ONE_AS_PRONOUN_AFTER or following in STOPWORDS or not following):
            return None  # "a new one", "write one", "one of them": a pronoun
        return "unit", _UNITS[word]
    if word in _TENS:
        return "unit", _TENS[word]
    if word in _SCALES:
        return "scale", _SCALES[word]
    if word in _ORDINALS:
        return "ordinal", _ORDINALS[word]
    if word in _FRACTIONS:
        return "fraction", _FRACTIONS[word]
    return None


def _canonical(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _is_sentence_start(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'([*-#>":
        if text[i] in "*-#>" and i > 0 and text[i - 1] not in " \n":
            return False
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END or (text[i].isdigit() and i + 1 < start and text[i + 1] == ".")


def _names(text: str, matches: list[re.Match[str]]) -> set[str]:
    """Proper nouns, acronyms, quoted strings and code identifiers, lower-cased."""
    names: set[str] = set()
    for pattern in (_QUOTED, _BACKTICKED):
        for m in pattern.finditer(text):
            quoted = next(group for group in m.groups() if group is not None)
            names.add(" ".join(quoted.lower().split()))
    for m in _IDENTIFIER.finditer(text):
        names.add(m.group(0).lower().removesuffix("()"))
    alpha = [m for m in matches if m.group(0)[0].isalpha()]
    capitalised = [m for m in alpha if m.group(0)[0].isupper()]
    shouting = [m for m in alpha if len(m.group(0)) > 1 and m.group(0).isupper()]
    title_case = len(alpha) >= 4 and len(capitalised) >= 0.6 * len(alpha)
    all_caps = len(alpha) >= 3 and len(shouting) >= 0.6 * len(alpha)
    for m in alpha:
        word = m.group(0)
        lower = word.lower().removesuffix("'s")
        if lower in _PRONOUN_I:
            continue
        acronym = len(word) > 1 and word.isupper()
        inner_capital = any(c.isupper() for c in word[1:]) and not word.isupper()
        proper = word[0].isupper() and not title_case and not all_caps and not _is_sentence_start(text, m.start())
        if (acronym and not all_caps) or inner_capital or proper:
            names.add(lower)
    return names


def _opposite_hits(words: tuple[str, ...]) -> Iterable[tuple[int, int]]:
    for i, word in enumerate(words):
        key = stem(word)
        yield from _OPPOSITES.get(key, ())
        if i + 1 < len(words) and words[i + 1] in _PARTICLES:
            yield from _OPPOSITES.get(f"{key}_{words[i + 1]}", ())
