"""Which prompts the model reads whole, decided without the tokenizer where the length alone can tell."""

from __future__ import annotations

import pytest

from proxy.semantic.prompts import MAX_CHARS_PER_TOKEN, fits_window


class Counter:
    """A tokenizer stand-in that answers ``tokens`` and records what it was asked."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.asked: list[str] = []

    def __call__(self, text: str) -> int:
        self.asked.append(text)
        return self.tokens


@pytest.mark.parametrize("text", ["How do I reset my password?", "x" * 254, "!?" * 127])
def test_short_ascii_fits_without_tokenizing(text: str) -> None:
    counter = Counter(tokens=10_000)  # would refuse it, were it asked
    assert fits_window(text, 256, counter) is True
    assert counter.asked == []


@pytest.mark.parametrize(("text", "tokens", "fits"), [
    ("x" * 255, 257, False),  # one character past the bound: the tokenizer decides
    ("x" * 255, 3, True),
    ("가나다라", 10, True),  # not ASCII: counted, whatever its length
    ("가나다라", 300, False),
    ("café", 6, True),
])
def test_the_tokenizer_decides_past_the_bound_and_beyond_ascii(text: str, tokens: int, fits: bool) -> None:
    counter = Counter(tokens)
    assert fits_window(text, 256, counter) is fits
    assert counter.asked == [text]


def test_a_text_longer_than_any_window_is_refused_without_tokenizing() -> None:
    counter = Counter(tokens=1)
    assert fits_window("x" * (256 * MAX_CHARS_PER_TOKEN + 1), 256, counter) is False
    assert counter.asked == []
