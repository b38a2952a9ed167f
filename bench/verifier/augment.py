"""Generic perturbations of one prompt: the same question reworded trivially, and one structural edit away.

The templates teach the verifier what a handful of question shapes mean; across shapes it never saw, it must
still know that case, punctuation, a missing ``?``, a contraction, a typo, politeness (``please``, ``can you
tell me``), ``what is X`` / ``define X`` / ``X meaning``, a synonym or a clause moved to the front do not
change the question, while one edit of structure does: a pronoun, a tense, ``and``/``or``, a negation, a
narrowing modifier, an antonym, two arguments swapped around an asymmetric word, a number, a name, a unit.

Each source prompt yields positives and hard negatives built from *the same* prompt, so the only difference
between a pair labelled 1 and one labelled 0 is the edit. Both sides of every pair get the same kind of surface
noise (:func:`bench.verifier.generate.surface`), so noise is never a cue for the label.

Sources (training split only; dev and test are left as the generator and the public data made them, so tuning
on dev still measures wordings of the kind the test holds): :data:`GENERAL` (general questions written for
this project), prompts of the training templates, and training sentences of PAWS/STS-B as framed prompts.
Every augmented pair carries its source's group, so it is in its source's split by construction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

from .generate import Pair, surface
from .lexicon import SLOTS


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: General questions (written for this project) of shapes the templates do not cover.
GENERAL = (
    "What is the capital of France?", "What is the capital of Australia?", "Who wrote Pride and Prejudice?",
    "Who painted the Mona Lisa?", "How tall is Mount Everest?", "How far is the Moon from the Earth?",
    "What is the boiling point of water?", "Why is the sky blue?", "How do vaccines work?",
    "What is photosynthesis?", "What is a black hole?", "How do I boil an egg?", "How do I tie a tie?",
    "How do I reset my router?", "How do I center a div in CSS?", "What is the population of Tokyo?",
    "When did World War II end?", "Who was the first president of the United States?",
    "What is the speed of light?", "How many bones are in the human body?", "What causes earthquakes?",
    "How does a refrigerator work?", "What is the difference between weather and climate?",
    "How do I make cold brew coffee?", "What is the best way to learn to type faster?",
    "How can I improve my sleep?", "What are the symptoms of the flu?", "How long should I steep green tea?",
    "What is a good name for a golden retriever?", "How do I remove a red wine stain from a carpet?",
    "What does HTTP stand for?", "What is the largest ocean on Earth?", "How does compound interest work?",
    "What is a mortgage?", "How do I write a haiku?", "Can dogs eat grapes?", "Is coffee bad for your heart?",
    "How do I change a flat tire?", "What is the tallest building in the world?",
    "How many calories are in a banana?", "What is the meaning of life?", "How do airplanes stay in the air?",
    "What is the Pythagorean theorem?", "How do I convert a string to an integer in Python?",
    "What is a REST API?", "How do I undo the last commit in git?", "What is the difference between a list "
    "and a tuple in Python?", "How do I sort a dictionary by value in Python?", "What is a closure in "
    "JavaScript?", "How do I read a CSV file in pandas?", "What is Docker used for?",
    "How do I exit vim?", "What is the time complexity of binary search?", "How do I start a vegetable garden?",
    "When should I plant tulip bulbs?", "How often should I water a cactus?", "What is the GDP of Brazil?",
    "Who discovered penicillin?", "What language is spoken in Brazil?", "How old is the universe?",
    "How many planets are in the solar system?", "What is the chemical formula of water?",
    "What is the main ingredient in guacamole?", "How do I make a sourdough starter?",
    "What is a healthy breakfast?", "How much water should I drink a day?", "How do I get rid of hiccups?",
    "What is the best time to visit Japan?", "Do I need a visa to travel to Canada?",
    "How do I apply for a passport?", "What is inflation?", "Why do cats purr?", "How do bees make honey?",
    "What is the longest river in Africa?", "Who invented the telephone?", "How does the stock market work?",
    "What is a haiku?", "How do I write a cover letter?", "How do I ask my manager for a raise?",
    "What should I wear to a job interview?", "How do I calculate the area of a circle?",
    "What is the square root of 144?", "What is 15 percent of 80?", "How many ounces are in a cup?",
    "How many kilometers are in a mile?", "What is the freezing point of water in Fahrenheit?",
    "How do I say thank you in Japanese?", "What is the plural of cactus?", "What rhymes with orange?",
    "What is the difference between affect and effect?", "When is the next full moon?",
    "How do solar panels work?", "What is machine learning?", "What is the difference between RAM and storage?",
    "Why is my laptop so slow?", "How do I take a screenshot on a Mac?", "How do I clear my browser cache?",
    "How do I lower my cholesterol?", "Is it safe to eat raw cookie dough?", "How do I cook quinoa?",
    "How long do I bake a potato?", "How do I train my puppy to sit?", "Why does my dog eat grass?",
    "What is the best way to save money?", "How do I build a budget?", "What is a Roth IRA?",
    "How do I get a job in data science?", "What are good books for learning statistics?",
    "What is the best exercise for back pain?", "How many push-ups should I do a day?",
    "How do I run a faster mile?", "What is the offside rule in soccer?", "How many players are on a "
    "basketball team?", "Who won the first FIFA World Cup?", "What is the origin of Halloween?",
    "Why do we have leap years?", "How does a bill become a law?", "What does the Supreme Court do?",
    "What is the difference between a virus and a bacterium?", "How are rainbows formed?",
    "What is the smallest country in the world?", "What is the hottest planet?",
    "How do I learn to play chess?", "What is a good gift for my sister?", "How do I make friends as an adult?",
    "How do I stop procrastinating?", "How do I deal with stress at work?", "What is mindfulness?",
    "Write a poem about the sea.", "Write a short story about a robot.", "Summarize the plot of Hamlet.",
    "Give me a recipe for pancakes.", "Give me ideas for a birthday party.", "Suggest a name for my bakery.",
    "Explain quantum computing to a child.", "Translate good morning into Spanish.",
    "List the planets in order from the sun.", "Recommend a movie for tonight.",
    "Plan a three-day trip to Rome.", "Write a SQL query that counts users by country.",
    "Write a Python function that checks if a number is prime.", "Explain how a hash table works.",
)

_FILLER_PREFIXES = ("Please tell me: ", "Can you tell me: ", "I want to know: ", "I'd like to know: ",
                    "Could you please tell me: ", "Quick question, ", "Hey, ", "Hi there! ", "Hello! ",
                    "Help me out: ", "I have a question: ", "Question: ", "Please answer: ", "Tell me please, ",
                    "I was wondering: ", "Can you help? ", "Hi, ")
_FILLER_SUFFIXES = (" Please.", " Thanks!", " Thank you.", " Thanks in advance!", " :)", " please", " thx",
                    " Any help appreciated.", " (asking for a friend)")
_SYNONYMS = (("big", "large"), ("quick", "fast"), ("buy", "purchase"), ("begin", "start"), ("kids", "children"),
             ("movie", "film"), ("cheap", "inexpensive"), ("car", "automobile"), ("help", "assist"),
             ("find out", "learn"), ("make", "create"), ("show", "display"), ("choose", "pick"),
             ("method", "way"), ("error", "mistake"), ("simple", "easy"), ("fix", "repair"), ("use", "utilize"),
             ("get rid of", "remove"), ("tips", "advice"), ("correct", "right"), ("enough", "sufficient"),
             ("near", "close to"), ("mom", "mother"), ("dad", "father"), ("TV", "television"),
             ("phone", "smartphone"), ("photo", "picture"), ("shop", "store"), ("job", "occupation"))
_ANTONYMS = (("increase", "decrease"), ("best", "worst"), ("hot", "cold"), ("more", "less"),
             ("before", "after"), ("buy", "sell"), ("cheap", "expensive"), ("fast", "slow"), ("start", "stop"),
             ("win", "lose"), ("high", "low"), ("good", "bad"), ("easy", "hard"), ("add", "remove"),
             ("longest", "shortest"), ("largest", "smallest"), ("first", "last"), ("open", "close"),
             ("tallest", "shortest"), ("heavy", "light"), ("safe", "dangerous"), ("north", "south"),
             ("east", "west"), ("healthy", "unhealthy"), ("young", "old"), ("raise", "lower"), ("gain", "lose"),
             ("import", "export"), ("upload", "download"), ("minimum", "maximum"), ("early", "late"),
             ("strong", "weak"), ("smallest", "biggest"), ("hottest", "coldest"), ("above", "below"))
_PRONOUNS = (("he", "she"), ("him", "her"), ("his", "her"), ("my", "your"), ("we", "they"), ("our", "their"),
             ("himself", "herself"), ("me", "you"), ("us", "them"))
_TENSES = ((r"\bis\b", "was"), (r"\bare\b", "were"), (r"\bdoes\b", "did"), (r"\bcan\b", "could"),
           (r"\bwill\b", "did"), (r"\bwas\b", "is"), (r"\bwere\b", "are"), (r"\bdid\b", "does"),
           (r"\bis\b(?! \w+ing\b)", "used to be"),
           (r"\bis\b(?! \w+ing\b)", "is becoming"), (r"\bhas\b", "had"), (r"\bdo\b", "did"))
_NEGATIONS = ((r"\bis\b", "isn't"), (r"\bare\b", "aren't"), (r"\bcan\b", "can't"), (r"\bdoes\b", "doesn't"),
              (r"\bshould\b", "shouldn't"), (r"\bdo\b", "don't"), (r"\bwill\b", "won't"), (r"\bwas\b", "wasn't"),
              (r"\bhas\b", "hasn't"), (r"\bdid\b", "didn't"), (r"\bcould\b", "couldn't"))
_UNNEGATE = ((r"\bis not\b", "is"), (r"\bisn't\b", "is"), (r"\bnot\b ", ""), (r"\bdon't\b", "do"),
             (r"\bdoesn't\b", "does"), (r"\bcan't\b", "can"), (r"\bwon't\b", "will"), (r"\bnever\b", "always"),
             (r"\bwithout\b", "with"), (r"\bno\b", "some"))
_MODIFIERS = (" for beginners", " for kids", " in winter", " on a budget", " at night", " for a small "
              "business", " in the 1990s", " in Japan", " without an oven", " for a vegan", " in under an "
              "hour", " on Windows", " for seniors", " during pregnancy", " in a small apartment", " by hand",
              " legally", " in the UK", " for free", " at altitude", " in the rain", " for a wedding",
              " after surgery", " as a student", " for the first time", " in Europe")
_ADJECTIVES = ("cheap ", "healthy ", "quick ", "best ", "small ", "old ", "electric ", "organic ", "used ",
               "professional ", "short ", "free ", "modern ", "local ", "frozen ")
_UNITS = (("kilometers", "miles"), ("km", "miles"), ("kg", "pounds"), ("kilograms", "pounds"),
          ("Celsius", "Fahrenheit"), ("meters", "feet"), ("hours", "minutes"), ("cups", "liters"),
          ("ounces", "grams"), ("dollars", "euros"), ("days", "weeks"), ("inches", "centimeters"),
          ("mph", "km/h"), ("seconds", "minutes"), ("years", "months"), ("gallons", "liters"))
_SYMMETRIC = (re.compile(r"\bbetween (\w+(?: \w+)?) and (\w+(?: \w+)?)\b"),
              re.compile(r"\b(\w+) vs\.? (\w+)\b"),
              re.compile(r"\b(?:compare|choose|pick|learn|mix|combine) (\w+(?: \w+)?) (?:and|or|with) (\w+)\b"),
              re.compile(r"\b(\w+) and (\w+) (?:together|at the same time|both)\b"))
#: Asymmetric words: swapping the two single words around them changes who/what does what.
_ASYMMETRIC = re.compile(r"\b([A-Za-z][a-z]+) (to|than|before|after|into|from|for|beat|beats|cause|causes|"
                         r"affect|affects|over|by|against|of|with) ([A-Za-z][a-z]+)\b")
_NAMES = tuple(v for kind in ("city", "country", "person", "famous", "company", "plang", "hlang")
               for v in SLOTS[kind][1])
_STOP_CAPS = _words("What Who How Why When Where Which Is Are Can Could Do Does Did Should Will Would I The A An "
                       "In On Of Please Tell Explain Write Give List Plan Suggest Recommend Summarize Translate "
                       "Define Hey Hi Hello Help Question Quick Thanks True False Fact Draw Generate Create Make "
                       "Is That It This")


def _swap_words(text: str, pairs: tuple[tuple[str, str], ...], rng: random.Random) -> str | None:
    options = [(x, y) for a, b in pairs for x, y in ((a, b), (b, a)) if re.search(rf"\b{re.escape(x)}\b", text)]
    if not options:
        return None
    x, y = rng.choice(options)
    return re.sub(rf"\b{re.escape(x)}\b", y, text, count=1)


def _regex_edit(text: str, edits: tuple[tuple[str, str], ...], rng: random.Random) -> str | None:
    options = [(pattern, new) for pattern, new in edits if re.search(pattern, text)]
    if not options:
        return None
    pattern, new = rng.choice(options)
    return re.sub(pattern, new, text, count=1)


def _end_insert(text: str, phrase: str) -> str:
    stripped = text.rstrip()
    end = len(stripped.rstrip("?.!"))
    return stripped[:end] + phrase + stripped[end:]


# -- positives: the same question ---------------------------------------------------------------------------


def _filler(text: str, rng: random.Random) -> str | None:
    if rng.random() < 0.6:
        prefix = rng.choice(_FILLER_PREFIXES)
        first = text[:1].lower() + text[1:] if prefix.endswith((", ", ": ")) and text[1:2].islower() else text
        return prefix + first
    return text.rstrip() + rng.choice(_FILLER_SUFFIXES)


def _punctuation(text: str, rng: random.Random) -> str | None:
    choice = rng.randrange(5)
    if choice == 0:
        return text.rstrip("?.! ")
    if choice == 1:
        return text.rstrip("?.! ") + rng.choice(("??", "?!", "...", " ?", "."))
    if choice == 2:
        return text.lower()
    if choice == 3:
        return re.sub(r"\s+", lambda m: rng.choice((" ", "  ", " ")), text).replace(",", "")
    return text.upper() if len(text) < 60 else text.lower().rstrip("?.!")


_WHAT_IS = re.compile(r"^(?:what is|what's|what are) (.+?)\s*[?.!]*$", re.IGNORECASE)
_HOW_DO = re.compile(r"^(?:how do i|how can i|how should i|how to) (.+?)\s*[?.!]*$", re.IGNORECASE)


def _reform(text: str, rng: random.Random) -> str | None:
    match = _WHAT_IS.match(text)
    if match:
        x = match.group(1)
        return rng.choice(("What's {x}?", "What is {x}?", "Define {x}.", "Explain {x}.", "{x} meaning?",
                           "What does {x} mean?", "Can you explain what {x} is?", "{x}?", "Meaning of {x}",
                           "Tell me what {x} is.", "Explain what {x} is.", "Definition of {x}?")).format(x=x)
    match = _HOW_DO.match(text)
    if match:
        x = match.group(1)
        return rng.choice(("How do I {x}?", "How can I {x}?", "How to {x}?", "What's the way to {x}?",
                           "How would I {x}?", "Steps to {x}?", "How does one {x}?", "how to {x}",
                           "Explain how to {x}.", "Tell me how to {x}.")).format(x=x)
    return None


def _front_clause(text: str, rng: random.Random) -> str | None:
    """``What ... in Paris?`` -> ``In Paris, what ...?`` (a trailing place/time phrase moved to the front)."""
    match = re.match(r"^(.+?) ((?:in|for|during|at|on) [A-Za-z0-9' -]{2,30}?)\s*([?.!]*)$", text)
    if not match or len(match.group(1).split()) < 3:
        return None
    head, phrase, end = match.groups()
    if head[:1].isupper() and head.split()[0] != "I" and head.split()[0] not in _NAMES:
        head = head[0].lower() + head[1:]
    return phrase[0].upper() + phrase[1:] + ", " + head + (end or "?")


def _symmetric(text: str, rng: random.Random) -> str | None:
    for pattern in _SYMMETRIC:
        match = pattern.search(text)
        if match:
            x, y = match.group(1), match.group(2)
            start, end = match.span()
            segment = text[start:end]
            swapped = segment.replace(x, "\0").replace(y, x).replace("\0", y) if x != y else segment
            return text[:start] + swapped + text[end:]
    return None


def _synonym(text: str, rng: random.Random) -> str | None:
    return _swap_words(text, _SYNONYMS, rng)


POSITIVES: dict[str, Callable[[str, random.Random], str | None]] = {
    "aug_filler": _filler, "aug_punct": _punctuation, "aug_reform": _reform, "aug_front": _front_clause,
    "aug_symmetric": _symmetric, "aug_synonym": _synonym,
}


# -- negatives: one structural edit ----------------------------------------------------------------------


def _pronoun(text: str, rng: random.Random) -> str | None:
    return _swap_words(text, _PRONOUNS, rng)


def _tense(text: str, rng: random.Random) -> str | None:
    return _regex_edit(text, _TENSES, rng)


def _and_or(text: str, rng: random.Random) -> str | None:
    return _swap_words(text, (("and", "or"),), rng)


def _negation(text: str, rng: random.Random) -> str | None:
    return _regex_edit(text, _UNNEGATE, rng) or _regex_edit(text, _NEGATIONS, rng)


def _modifier(text: str, rng: random.Random) -> str | None:
    if rng.random() < 0.6:
        return _end_insert(text, rng.choice(_MODIFIERS))
    nouns = [m for m in re.finditer(r"\b(?:a|an|the|my|some) ([a-z]{3,})\b", text)]
    if not nouns:
        return _end_insert(text, rng.choice(_MODIFIERS))
    m = rng.choice(nouns)
    adjective = rng.choice(_ADJECTIVES)
    fixed = text[:m.start(1)] + adjective + text[m.start(1):]
    return re.sub(r"\b([Aa])n? (?=\w)", lambda a: (a.group(1) + ("n " if fixed[a.end():a.end() + 1] in "aeiou"
                                                                 else " ")), fixed)


def _opposite(text: str, rng: random.Random) -> str | None:
    return _swap_words(text, _ANTONYMS, rng)


def _order(text: str, rng: random.Random) -> str | None:
    """Two arguments of an asymmetric word swapped, or two names swapped (PAWS-style)."""
    caps = [m for m in re.finditer(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b", text) if m.group(0) not in _STOP_CAPS
            and m.start() > 0]
    distinct = {m.group(0) for m in caps}
    if len(distinct) >= 2 and rng.random() < 0.5:
        first, second = rng.sample(sorted(distinct), 2)
        return text.replace(first, "\0").replace(second, first).replace("\0", second)
    matches = [m for m in _ASYMMETRIC.finditer(text) if m.group(1).lower() not in _STOP_WORDS
               and m.group(3).lower() not in _STOP_WORDS and m.group(1).lower() != m.group(3).lower()]
    if not matches:
        return None
    m = rng.choice(matches)
    return text[:m.start()] + f"{m.group(3)} {m.group(2)} {m.group(1)}" + text[m.end():]


_STOP_WORDS = _words("the a an to of in on for and or is are was be it this that i you he she we they my your his "
                        "her how what why when who do does did can should will would me go get want need way "
                        "have has had from with by than")


def _number(text: str, rng: random.Random) -> str | None:
    numbers = list(re.finditer(r"\b\d+(?:\.\d+)?\b", text))
    if not numbers:
        return None
    m = rng.choice(numbers)
    value = m.group(0)
    if "." in value:
        new = str(round(float(value) * rng.choice((2, 0.5, 10)), 2))
    else:
        n = int(value)
        new = str(rng.choice((n + 1, n + rng.randint(2, 9), n * 2, max(0, n - 1), n * 10)))
    return None if new == value else text[:m.start()] + new + text[m.end():]


def _name(text: str, rng: random.Random) -> str | None:
    present = [n for n in _NAMES if re.search(rf"\b{re.escape(n)}\b", text)]
    if present:
        old = rng.choice(present)
        return re.sub(rf"\b{re.escape(old)}\b", rng.choice([n for n in _NAMES if n != old]), text, count=1)
    caps = [m for m in re.finditer(r"\b[A-Z][a-z]{2,}\b", text) if m.group(0) not in _STOP_CAPS and m.start() > 0]
    if not caps:
        return None
    m = rng.choice(caps)
    return text[:m.start()] + rng.choice(_NAMES) + text[m.end():]


def _unit(text: str, rng: random.Random) -> str | None:
    return _swap_words(text, _UNITS, rng)


NEGATIVES: dict[str, Callable[[str, random.Random], str | None]] = {
    "aug_pronoun": _pronoun, "aug_tense": _tense, "aug_and_or": _and_or, "aug_negation": _negation,
    "aug_modifier": _modifier, "aug_opposite": _opposite, "aug_order": _order, "aug_number": _number,
    "aug_name": _name, "aug_unit": _unit,
}
#: How often each negative edit is tried relative to the others (the families the tier misses most, more).
_NEGATIVE_WEIGHTS = {"aug_pronoun": 2, "aug_tense": 2, "aug_and_or": 1.5, "aug_negation": 1.5, "aug_modifier": 3,
                     "aug_opposite": 1, "aug_order": 3, "aug_number": 1, "aug_name": 1, "aug_unit": 0.5}
_POSITIVE_WEIGHTS = {"aug_filler": 2, "aug_punct": 2, "aug_reform": 2, "aug_front": 1, "aug_symmetric": 2,
                     "aug_synonym": 1}


def _weighted(options: list[str], weights: dict[str, float], rng: random.Random) -> str:
    return rng.choices(options, weights=[weights[o] for o in options])[0]


def perturb(source: str, group: str, key: str, rng: random.Random, positives: int = 2,
            negatives: int = 2) -> Iterator[Pair]:
    """Up to ``positives`` same-question and ``negatives`` one-edit pairs of ``source``, in ``group``."""
    made = 0
    for kind, budget, table, weights, label in (("pos", positives, POSITIVES, _POSITIVE_WEIGHTS, 1),
                                                ("neg", negatives, NEGATIVES, _NEGATIVE_WEIGHTS, 0)):
        results = {name: out for name, edit in table.items() if (out := edit(source, rng)) and
                   out.strip().lower() != source.strip().lower()}
        if label == 1 and not results:
            results = {"aug_punct": source}
        chosen: list[str] = []
        while results and len(chosen) < budget:
            name = _weighted(sorted(results), weights, rng)
            chosen.append(name)
            changed = results.pop(name)
            a, b = (source, changed) if rng.random() < 0.5 else (changed, source)
            loose = rng.random() < 0.3
            made += 1
            yield Pair(id=f"{key}-{kind}{made}", group=group, source="augmented", family=name, label=label,
                       a=surface(a, rng, loose=loose), b=surface(b, rng, loose=loose), split="train")


def augment(train: list[Pair], seed: int = 11, template_sources: int = 3000, public_sources: int = 1500,
            general_rounds: int = 4) -> list[Pair]:
    """Augmented pairs from the training split's prompts (and :data:`GENERAL`), all in the training split."""
    rng = random.Random(f"{seed}:augment")
    out: list[Pair] = []
    for round_ in range(general_rounds):
        for i, question in enumerate(GENERAL):
            out.extend(perturb(question, "general", f"general-{round_}-{i}", rng))
    generated = sorted({(p.a, p.group) for p in train if p.source == "generated" and p.label == 1})
    public = sorted({(p.a, p.group) for p in train if p.source in ("paws", "stsb")})
    for name, pool, count in (("template", generated, template_sources), ("public", public, public_sources)):
        for i, (text, group) in enumerate(rng.sample(pool, min(count, len(pool)))):
            out.extend(perturb(text, group, f"aug-{name}-{i}", rng,
                               positives=1 if name == "public" else 2, negatives=2))
    return out
