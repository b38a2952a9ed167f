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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

#: Guard names, in the order they are checked (the first that refuses is reported).
GUARDS: tuple[str, ...] = ("numbers", "negation", "names", "opposites", "order", "substitution")

#: Similarity a pair that differs in one replaced word or two (see :func:`substitution`) must reach.
SUBSTITUTION_SIMILARITY = 0.95
MAX_REGIONS = 2
MIN_ADDED = 2

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
_SYMMETRIC = frozenset({"and", "or", "vs", "versus", "between", "with", "both", "nor", "plus"})
_ARTICLES = frozenset({"a", "an", "the"})
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
_PREPOSITIONS = frozenset(_words("in on at for from with by during about under over near into since until within "
                                 "without through across per via"))

_NEGATION_WORDS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor",
                             "without", "except", "excluding", "cannot", "hardly", "barely", "seldom", "rarely"})
_NEGATION_PREFIXES = ("non", "dis", "un", "in", "im", "il", "ir")

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
_NAME_PREFIX_MIN = 5

# -- opposites ----------------------------------------------------------------------------------------

_OPPOSITE_PAIRS = """
before:after increase:decrease increasing:decreasing raise:lower larger:smaller largest:smallest bigger:smaller
biggest:smallest big:small more:less most:least max:min maximum:minimum best:worst better:worse buy:sell
buying:selling hot:cold hottest:coldest hotter:colder warm:cool enable:disable add:remove upload:download
import:export input:output push:pull win:lose winner:loser true:false left:right north:south east:west male:female
high:low higher:lower highest:lowest long:short longer:shorter longest:shortest fast:slow faster:slower
fastest:slowest early:late earlier:later earliest:latest first:last young:old younger:older cheap:expensive
cheapest:expensive cheaper:expensive positive:negative plus:minus above:below inside:outside top:bottom
ascending:descending encrypt:decrypt encryption:decryption encode:decode compress:decompress
serialize:deserialize lock:unlock install:uninstall accept:reject allow:deny include:exclude inner:outer
lowercase:uppercase horizontal:vertical row:column client:server send:receive borrow:lend arrive:depart
arrival:departure gain:lose profit:loss debit:credit asset:liability income:expense wet:dry light:dark
strong:weak strength:weakness strengths:weaknesses rich:poor happy:sad love:hate like:dislike pro:con
pros:cons advantage:disadvantage advantages:disadvantages benefit:drawback benefits:drawbacks
synchronous:asynchronous sync:async static:dynamic public:private mutable:immutable always:never all:none
everything:nothing success:failure succeed:fail forward:backward start:stop open:close opened:closed
connect:disconnect mount:unmount attach:detach show:hide visible:hidden join:leave online:offline
legal:illegal safe:dangerous heavy:light thick:thin wide:narrow deep:shallow full:empty morning:evening
day:night summer:winter spring:autumn spring:fall sunrise:sunset men:women man:woman boy:girl husband:wife
father:mother son:daughter brother:sister uncle:aunt king:queen minimum:maximum min:max floor:ceiling
min:maximum lowest:highest under:over underweight:overweight underestimate:overestimate import:export
inbound:outbound incoming:outgoing ingress:egress upstream:downstream uphill:downhill upstairs:downstairs
upgrade:downgrade upvote:downvote sign_in:sign_out log_in:log_out login:logout signin:signout zoom_in:zoom_out
turn_on:turn_off switch_on:switch_off opt_in:opt_out check_in:check_out scroll_up:scroll_down
scale_up:scale_down yesterday:tomorrow last:next previous:next past:future was:will were:will ago:will
earlier:later before:later
"""
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
    for index, pair in enumerate(_OPPOSITE_PAIRS.split()):
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
        negations=sum(1 for w in words if w in _NEGATION_WORDS or w.endswith("n't")),
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
        number = _word_value(word, words[i - 1] if i else "", words[i + 1] if i + 1 < len(words) else "")
        if number is None:
            if total is not None and word == "and" and i + 1 < len(words) and _word_value(words[i + 1], word):
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


def _word_value(word: str, previous: str, following: str = "x") -> tuple[str, float] | None:
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
        for prefix in _NEGATION_PREFIXES:
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
    return len(short) >= _NAME_PREFIX_MIN and long.startswith(short)


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
    x = ["a" if s in _ARTICLES else s for s in a.stems]
    y = ["a" if s in _ARTICLES else s for s in b.stems]
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
            if middle and any(t not in _SYMMETRIC for t in middle):
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
    return len(span) >= 2 and span[0] not in _PREPOSITIONS and any(t not in STOPWORDS for t in span)


def _pivoted(a: Features, b: Features) -> bool:
    """Two words shared by both prompts are in the other order in ``b``, and a third word that occurs once in
    each prompt is between them in both: they moved across it, as arguments swapping sides of a relation do.
    A phrase moved as a block (``In Python, how ...``) never has such a pivot."""
    pos_a, pos_b = _unique_positions(a.stems), _unique_positions(b.stems)
    shared = [s for s in pos_a if s in pos_b]
    items = [s for s in shared if s not in STOPWORDS or s in a.names]
    pivots = [s for s in shared if s not in _SYMMETRIC and s not in _ARTICLES]
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
            if s not in STOPWORDS and w not in _NEGATION_WORDS and not w.endswith("n't")
            and not any(c.isdigit() for c in w) and _word_value(w, "") is None]


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
