"""proxy.semantic.vectors: embeddings remembered by text, in 4 bytes a dimension (issue 10.18)."""

from __future__ import annotations

import random
import tracemalloc
from collections import Counter
from collections.abc import Sequence

import pytest

from proxy.contracts import NullObserver
from proxy.platform.failopen import FailOpen
from proxy.semantic.vectors import Vectors

DIM = 384


class RandomEmbedder:
    """Fresh Python floats per call, as a model's output turned into lists is."""

    def __init__(self) -> None:
        self.calls = 0
        self.rng = random.Random(3)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [[self.rng.uniform(-1, 1) for _ in range(DIM)] for _ in texts]


def vectors(embedder: RandomEmbedder, size: int = 4096) -> Vectors:
    return Vectors(embedder, timeout=5.0, observer=NullObserver(), failopen=FailOpen(NullObserver()),  # type: ignore[arg-type]
                   stats=Counter(), cache_size=size)


async def test_a_text_is_embedded_once_and_given_back_the_same_to_float32() -> None:
    embedder = RandomEmbedder()
    cache = vectors(embedder)
    first = await cache.of("hello")
    again = await cache.of("hello")
    assert embedder.calls == 1
    assert first is not None and again is not None and len(again) == DIM
    assert again == pytest.approx(first, abs=1e-6)  # float32 keeps 7 digits; similarities move by ~1e-7


async def test_the_cache_is_bounded() -> None:
    cache = vectors(RandomEmbedder(), size=3)
    for text in "abcd":
        await cache.of(text)
    assert list(cache._cache) == ["b", "c", "d"]


async def test_each_remembered_vector_costs_about_4_bytes_a_dimension() -> None:
    cache = vectors(RandomEmbedder())
    await cache.of("warm-up")  # the dict's first allocations
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(200):
            await cache.of(f"prompt {i}")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_vector = kept / 200
    assert per_vector < 2.5 * 1024, per_vector  # 384 x 4 B + headers; a list of Python floats is ~12 KB
