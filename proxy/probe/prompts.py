"""Probe prompts: a fresh nonce at byte 0, then real English text sized by the upstream's own token count.

The nonce makes every prompt new, so nothing cached by an earlier run (or another customer) can match
it; a cache hit on a prompt's first request is therefore contamination. Sizes are not guessed from
characters: :class:`TokenGauge` learns how many tokens the upstream counts per word of this text from
the ``prompt_tokens`` of the answers, and sizes the next prompt with what it learnt.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

_TEXT = (
    "The harbour town woke slowly under a grey sky, and the first boats went out before the bakers had "
    "lit their ovens. Fishermen checked their nets by lantern light, talking quietly about the weather "
    "and the price of diesel, while gulls circled above the breakwater waiting for scraps. Along the "
    "quay an old ferry creaked against its ropes, its paint peeling in long strips that the children "
    "liked to pull away when nobody was watching. The lighthouse keeper, who had not been needed for "
    "years since the lamp was automated, still climbed the spiral stairs every morning to wipe the "
    "glass and write a line in the logbook about the wind, the tide and the colour of the water. "
    "In the library on the hill a retired teacher sorted donated books into boxes marked history, "
    "gardening, travel and novels, pausing now and then to read a page aloud to nobody in particular. "
    "The market opened at eight with stalls of apples, cheese, honey and wool, and the smell of coffee "
    "drifted from a van parked beside the fountain. A cyclist delivered letters from a basket, stopping "
    "to chat at every second door, so that the round that should have taken an hour usually took three. "
    "By noon the clouds had thinned, the sea had turned from slate to green, and the boats came back "
    "low in the water with their catch of mackerel and crab. Tourists arrived on the afternoon train, "
    "carrying maps they did not need, and wandered along the cliff path photographing the same view "
    "from slightly different places. In the evening the church bell rang seven times, the cafe stacked "
    "its chairs, and the keeper climbed the stairs once more to watch the light sweep across the bay."
)
PROSE = _TEXT.split(" ")  # words, punctuation attached: real text, not a token list

USER_TURN = "Reply with the single word OK."


def new_nonce() -> str:
    return f"probe-{secrets.token_hex(8)}"


def filler(words: int, offset: int = 0) -> str:
    """``words`` words of the prose, starting ``offset`` words in and wrapping around."""
    return " ".join(PROSE[(offset + i) % len(PROSE)] for i in range(max(0, words)))


def messages(nonce: str, system_words: int, *, user: str = USER_TURN, cache_control: bool = False) -> list[Any]:
    """A system prompt of ``nonce`` plus ``system_words`` words, then ``user``; with ``cache_control`` both
    are content blocks carrying an ephemeral cache mark (Anthropic-style caches cache up to marks only)."""
    system = f"{nonce} {filler(system_words)}".rstrip()
    if not cache_control:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    mark = {"type": "ephemeral"}
    return [{"role": "system", "content": [{"type": "text", "text": system, "cache_control": mark}]},
            {"role": "user", "content": [{"type": "text", "text": user, "cache_control": mark}]}]


class TokenGauge:
    """Maps words of probe text to the upstream's tokens: ``tokens = overhead + per_word * words``.

    Starts from a typical English ratio and refits from each answer; two answers of different sizes
    give both figures, and later answers refine them.
    """

    def __init__(self, per_word: float = 1.3, overhead: float = 20.0) -> None:
        self.per_word = per_word
        self.overhead = overhead
        self._samples: dict[int, int] = {}

    def observe(self, words: int, prompt_tokens: int | None) -> None:
        if prompt_tokens is None or prompt_tokens <= 0:
            return
        self._samples[words] = prompt_tokens
        if len(self._samples) >= 2:
            (w1, t1), (w2, t2) = self._nearest_pair()
            if w2 != w1 and t2 > t1:
                self.per_word = (t2 - t1) / (w2 - w1)
        self.overhead = prompt_tokens - self.per_word * words

    def _nearest_pair(self) -> tuple[tuple[int, int], tuple[int, int]]:
        # the two widest-apart samples give the steadiest slope
        ordered = sorted(self._samples.items())
        return ordered[0], ordered[-1]

    def tokens_for(self, words: int) -> int:
        """Tokens the upstream is expected to count for a prompt of ``words`` system words, rounded up."""
        return max(0, math.ceil(self.overhead + self.per_word * words))

    def words_for(self, tokens: int) -> int:
        """System words (after the nonce) for a prompt of about ``tokens`` tokens; at least 0."""
        return max(0, round((tokens - self.overhead) / self.per_word))
