"""Feedback verdicts kept as labelled pairs: hashes only by default, the prompts with FEEDBACK_KEEP_TEXT, and
the export in bench/verifier's training format."""

from __future__ import annotations

from pathlib import Path

from proxy.semantic.labels import FILENAME, FeedbackLabels, export


async def record_two(path: Path, *, keep_text: bool) -> None:
    labels = FeedbackLabels(path, keep_text=keep_text)
    await labels.open()
    try:
        await labels.record("wrong", scope="scope-1", stored_hash="s" * 64, asked_hash="a" * 64,
                            stored_text="Does stress cause high blood pressure?",
                            asked_text="Does high blood pressure cause stress?", now=1.0)
        await labels.record("right", scope="scope-1", stored_hash="t" * 64, asked_hash="b" * 64,
                            stored_text="How do I make pancakes?", asked_text="What is a good recipe for pancakes?",
                            now=2.0)
    finally:
        await labels.close()


async def test_by_default_only_hashes_are_kept(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    await record_two(path, keep_text=False)
    wrong, right = export(path)
    assert (wrong["label"], wrong["family"], right["label"], right["family"]) == (0, "feedback_wrong", 1,
                                                                                  "feedback_right")
    assert wrong["a"] is None and wrong["b"] is None
    assert (wrong["a_hash"], wrong["b_hash"]) == ("s" * 64, "a" * 64)
    assert "pancakes" not in path.read_bytes().decode("latin-1")  # not in the file at all


async def test_with_keep_text_the_pairs_are_training_data(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    await record_two(path, keep_text=True)
    wrong, right = export(path)
    assert (wrong["a"], wrong["b"]) == ("Does stress cause high blood pressure?",
                                        "Does high blood pressure cause stress?")
    assert (right["a"], right["b"], right["label"]) == ("How do I make pancakes?",
                                                        "What is a good recipe for pancakes?", 1)
    assert {"id", "group", "source", "family", "label", "a", "b", "split"} <= set(right)
    assert right["source"] == "feedback" and "a_hash" not in right
    assert wrong["group"] != right["group"]  # different stored prompts: different groups (kept in one split)


async def test_keep_text_without_the_text_keeps_the_hashes(tmp_path: Path) -> None:
    labels = FeedbackLabels(tmp_path / FILENAME, keep_text=True)
    await labels.open()
    await labels.record("wrong", scope="s", stored_hash="x", asked_hash="y")
    await labels.close()
    (pair,) = export(tmp_path / FILENAME)
    assert pair["a"] is None and pair["a_hash"] == "x"


def test_no_file_exports_nothing(tmp_path: Path) -> None:
    assert export(tmp_path / FILENAME) == []
    assert not (tmp_path / FILENAME).exists()  # reading did not create it
