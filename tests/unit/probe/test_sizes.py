"""proxy.probe.sizes.SizeSearch against exact block caches: the minimum within one step, the step exact."""

from __future__ import annotations

import pytest

from proxy.probe.sizes import SizeSearch


def block_cache(minimum: int, step: int):  # type: ignore[no-untyped-def]
    def cached(prompt: int) -> int:
        return 0 if prompt < minimum else minimum + (prompt - minimum) // step * step
    return cached


@pytest.mark.parametrize(("minimum", "step"), [(1024, 128), (256, 256), (64, 64), (16, 16), (1024, 1), (300, 50),
                                               (2048, 128)])
def test_finds_minimum_and_step(minimum: int, step: int) -> None:
    cache = block_cache(minimum, step)
    search = SizeSearch((256, 512, 1024, 2048, 4096), max_probes=40)
    while (size := search.next_size()) is not None:
        search.record(size, cache(size))
    figures = search.figures()
    assert figures["step_tokens"] == step
    assert minimum <= figures["min_prefix_tokens"] < minimum + step
    low, high = figures["min_prefix_bracket"]
    assert low < minimum <= high and high - low <= step


def test_openai_like_probes_exactly() -> None:
    cache = block_cache(1024, 128)
    search = SizeSearch((256, 512, 1024, 2048, 4096))
    sizes = []
    while (size := search.next_size()) is not None:
        sizes.append(size)
        search.record(size, cache(size))
    # ladder to the first hit, step from 1024 + 16, 32, 64, 128, then the floor between 512 and 1024
    assert sizes == [256, 512, 1024, 1040, 1056, 1088, 1152, 768, 896]
    assert search.figures()["min_prefix_tokens"] == 1024


def test_nothing_caches_up_to_the_ladder_top() -> None:
    search = SizeSearch((1024, 2048))
    while (size := search.next_size()) is not None:
        search.record(size, 0)
    assert search.figures() == {"min_prefix_tokens": None, "min_prefix_bracket": None, "step_tokens": None,
                                "largest_uncached": 2048, "points": [[1024, 0], [2048, 0]]}


def test_without_refinement_the_first_hit_is_the_answer() -> None:
    search = SizeSearch((1024, 2048), refine=False)
    search.record(1024, 0)
    search.record(2060, 1920)
    assert search.next_size() is None
    assert search.figures()["min_prefix_tokens"] == 1920
    assert search.figures()["min_prefix_bracket"] == [1024, 1920]
    assert search.figures()["step_tokens"] is None


def test_probe_budget_is_bounded() -> None:
    search = SizeSearch((16,), max_probes=3)
    for prompt in (16, 32, 48):
        search.record(prompt, prompt)
    assert search.next_size() is None
