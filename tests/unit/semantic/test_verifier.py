"""The shipped verifier on the real int8 model: clear cases decided as expected, the same score every time,
nothing loaded before it is needed, and every failure raised as a BackendError (the caller's miss)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from proxy.errors import BackendError
from proxy.semantic.verifier import META_FILE, MODEL_FILE, OnnxVerifier, Verifier, bundled_model_dir

#: (stored, asked): the same question in other words, to be answered from the cache. The shipped model is
#: strict (threshold 0.99): many paraphrases score below it (see bench/verifier/evaluate.py), these do not.
SAME = [
    ("Can I take ibuprofen with paracetamol?", "Is it safe to take paracetamol and ibuprofen together?"),
    ("How do I make pancakes?", "What is a good recipe for pancakes?"),
]
#: (stored, asked): look-alikes that need another answer.
DIFFERENT = [
    ("Does stress cause high blood pressure?", "Does high blood pressure cause stress?"),  # roles
    ("Convert 10 miles to kilometers.", "Convert 10 kilometers to miles."),  # order
    ("Is Pluto a planet?", "Was Pluto a planet?"),  # tense
    ("How do I tell if she likes me?", "How do I tell if I like her?"),  # who likes whom
    ("What are the best laptops?", "What are the best laptops for students?"),  # narrowing modifier
    ("Should I learn Python and Java?", "Should I learn Python or Java?"),  # and / or
]


@pytest.fixture(scope="module")
def verifier() -> OnnxVerifier:
    verifier = OnnxVerifier()
    verifier.load()
    return verifier


def test_is_a_verifier(verifier: OnnxVerifier) -> None:
    checked: Verifier = verifier
    assert checked.name == "minilm-l6-cross-int8"
    assert 0.0 < verifier.threshold < 1.0


def test_paraphrases_score_above_the_threshold(verifier: OnnxVerifier) -> None:
    scores = verifier.score(SAME)
    assert [s >= verifier.threshold for s in scores] == [True] * len(SAME), scores


def test_look_alikes_score_below_the_threshold(verifier: OnnxVerifier) -> None:
    scores = verifier.score(DIFFERENT)
    assert [s >= verifier.threshold for s in scores] == [False] * len(DIFFERENT), scores


def test_scores_are_probabilities_and_deterministic(verifier: OnnxVerifier) -> None:
    pairs = SAME + DIFFERENT
    first = verifier.score(pairs)
    assert all(0.0 <= s <= 1.0 for s in first)
    assert verifier.score(pairs) == first
    # a pair's score does not depend on the other candidates scored with it
    assert [verifier.score([pair])[0] for pair in pairs] == first


def test_no_pairs_loads_nothing(tmp_path: Path) -> None:
    verifier = OnnxVerifier(tmp_path / "nowhere")
    assert verifier.score([]) == []
    assert not verifier.loaded


def test_constructor_does_no_io_and_a_missing_model_fails_closed(tmp_path: Path) -> None:
    verifier = OnnxVerifier(tmp_path / "nowhere")  # nothing is read yet: no error here
    assert not verifier.loaded
    with pytest.raises(BackendError) as caught:
        verifier.score(SAME[:1])
    assert caught.value.component == "verifier"


def test_a_damaged_model_fails_closed(tmp_path: Path) -> None:
    shutil.copyfile(bundled_model_dir() / META_FILE, tmp_path / META_FILE)
    (tmp_path / MODEL_FILE).write_bytes(b"not an onnx graph")
    with pytest.raises(BackendError):
        OnnxVerifier(tmp_path).score(SAME[:1])


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threads"):
        OnnxVerifier(threads=0)
