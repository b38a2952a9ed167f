"""SentenceEncoder against sentence-transformers' own encode, the reference for what the model means."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from embedding_service.model import SentenceEncoder

TEXTS = [
    "How do I reset my password?",
    "ok",
    "Ünïcödé, emoji 🙂 and 日本語 go through the same wordpiece tokenizer.",
    # Far beyond the model's 256-token window: both sides must truncate the same way.
    "A long support ticket about a failed invoice payment and a refund request. " * 40,
    "Short again.",
]


@pytest.fixture(scope="module")
def reference(encoder: SentenceEncoder) -> list[list[float]]:
    from sentence_transformers import SentenceTransformer

    model: Any = SentenceTransformer(str(encoder.files.path), device="cpu")
    vectors: list[list[float]] = model.encode(TEXTS, normalize_embeddings=True).tolist()
    return vectors


def cosines(a: list[list[float]], b: list[list[float]]) -> list[float]:
    return [sum(x * y for x, y in zip(u, v, strict=True)) for u, v in zip(a, b, strict=True)]


def test_float32_matches_sentence_transformers(torch_fp32: SentenceEncoder, reference: list[list[float]]) -> None:
    assert (torch_fp32.backend, torch_fp32.precision) == ("torch", "fp32")
    assert min(cosines(torch_fp32.encode(TEXTS), reference)) > 0.99999


def test_the_session_encoder_agrees_whatever_its_precision(encoder: SentenceEncoder,
                                                           reference: list[list[float]]) -> None:
    vectors = encoder.encode(TEXTS)
    assert min(cosines(vectors, reference)) > 0.999
    for vector in vectors:
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)


def test_batch_composition_barely_changes_a_vector(encoder: SentenceEncoder) -> None:
    alone = [encoder.encode([text])[0] for text in TEXTS]
    small = TEXTS[:encoder.onnx_max_batch]  # one ONNX call, as the texts alone were
    # Within one backend the padding a batch adds shifts results by ~1e-4 at most (int8 ONNX measured
    # 0.99994, torch bf16 0.99988, fp32 ~1e-7).
    assert min(cosines(encoder.encode(small), alone[:len(small)])) > 0.9995
    # A larger call may run on torch: the two backends agree as each agrees with float32 (int8 ONNX to
    # >= 0.99 by the check at load; measured 0.997 here).
    assert min(cosines(encoder.encode(TEXTS), alone)) > 0.99


def test_dimensions_window_and_token_counts(encoder: SentenceEncoder) -> None:
    assert (encoder.dim, encoder.max_tokens, encoder.name) == (384, 256, "all-MiniLM-L6-v2")
    assert encoder.count_tokens("How do I reset my password?") == 9  # 7 wordpieces + [CLS] + [SEP]
    assert encoder.count_tokens(TEXTS[3]) > 256  # counted in full, not truncated
    assert encoder.encode([]) == []


def test_ascii_text_never_counts_more_tokens_than_characters_plus_two(encoder: SentenceEncoder) -> None:
    """The bound ``proxy.semantic.prompts.fits_window`` trusts to skip the tokenizer: punctuation and
    digits split one token a character, words of letters fewer; nothing beyond one a character."""
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(128)]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 254))) for _ in range(300)]
    texts += ["!" * 254, "1.2,3;4" * 36, "a b " * 63, TEXTS[0]]
    assert all(encoder.count_tokens(text) <= len(text) + 2 for text in texts)
    assert encoder.count_tokens("!" * 254) == 256  # the bound is tight
    assert encoder.count_tokens("가나다라") == 10  # and does not hold beyond ASCII


def test_encode_before_load_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before load"):
        SentenceEncoder().encode(["hi"])
    with pytest.raises(ValueError, match="precision"):
        SentenceEncoder(precision="int4")
    with pytest.raises(ValueError, match="backend"):
        SentenceEncoder(backend="tensorrt")
    with pytest.raises(ValueError, match="onnx_max_batch"):
        SentenceEncoder(onnx_max_batch=0)
