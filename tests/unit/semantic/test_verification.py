"""The verifier's step in the tier: only a candidate it accepts is served, it fails closed (error, timeout,
no model), it runs only when there is a candidate, and its per-day book is what shadow mode reports.

A stand-in verifier (scores chosen by the test) drives the tier's decisions; the real model's scores are
tested in test_verifier.py and end to end in tests/integration/semantic/test_verifier_tier.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from proxy.errors import BackendError
from proxy.semantic.tier import SemanticCache
from proxy.semantic.verification import BUCKETS, ScoreBook, Verification
from proxy.semantic.verifier import OnnxVerifier

from .test_tier import PARAPHRASE, STORED, Clock, FakeEmbedder, body, entry, make_tier, store, unit

DAY = 86_400.0


class StandInVerifier:
    name = "stand-in"
    threshold = 0.99

    def __init__(self, score: float = 0.995) -> None:
        self.value = score
        self.calls: list[tuple[str, str]] = []
        self.error: Exception | None = None
        self.release: threading.Event | None = None  # set: score() waits for it (a verifier that hangs)

    def load(self) -> None:
        return None

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.calls.extend(pairs)
        if self.release is not None:
            self.release.wait(10)
        if self.error is not None:
            raise self.error
        return [self.value for _ in pairs]


def verified_tier(store_kind: str, tmp_path: Path, verifier: Any, **options: Any) -> SemanticCache:
    options.setdefault("verifier_timeout", 30.0)  # only the timeout's own test may depend on it (a busy box)
    embedder = FakeEmbedder({STORED: unit(1, 0, 0, 0), PARAPHRASE: unit(1, 0.3, 0, 0), "far": unit(0, 1, 0, 0)})
    return make_tier(store_kind, tmp_path, embedder, Clock(), threshold=0.85, verifier=verifier, **options)


async def ask(tier: SemanticCache, text: str = PARAPHRASE) -> Any:
    return await tier.lookup(body(text), scope="s", namespace="", request_id=f"r-{text}")


async def test_only_a_candidate_the_verifier_accepts_is_served(store_kind: str, tmp_path: Path) -> None:
    verifier = StandInVerifier(score=0.5)
    tier = verified_tier(store_kind, tmp_path, verifier)
    await tier.start()
    try:
        await store(tier, Clock())
        refused = await ask(tier)
        assert refused is not None and refused.entry is None
        assert verifier.calls == [(STORED, PARAPHRASE)]  # stored first, asked second
        assert tier.stats["refused_verifier"] == 1
        verifier.value = 0.995
        served = await ask(tier)
        assert served is not None and served.entry is not None
        assert tier.verification is not None and tier.verification.threshold == 0.99  # the model's own
    finally:
        await tier.stop()


async def test_no_candidate_no_verifier(store_kind: str, tmp_path: Path) -> None:
    verifier = StandInVerifier()
    tier = verified_tier(store_kind, tmp_path, verifier)
    await tier.start()
    try:
        await store(tier, Clock())
        probe = await ask(tier, "far")  # nothing above the search threshold
        assert probe is not None and probe.entry is None
        assert verifier.calls == []  # neither when STORED was first asked (an empty store) nor now
    finally:
        await tier.stop()


async def test_a_verifier_that_raises_serves_nothing(store_kind: str, tmp_path: Path) -> None:
    verifier = StandInVerifier()
    tier = verified_tier(store_kind, tmp_path, verifier)
    await tier.start()
    try:
        await store(tier, Clock())
        verifier.error = BackendError("verifier", "broken")
        probe = await ask(tier)
        assert probe is not None and probe.entry is None
        assert tier.stats["verifier_errors"] == 1
        assert tier.verification is not None
        (today,) = tier.verification.days.report()
        assert (today["candidates"], today["errors"], today["accepted"]) == (1, 1, 0)
    finally:
        await tier.stop()


async def test_a_verifier_that_hangs_is_cut_short_and_serves_nothing(store_kind: str, tmp_path: Path) -> None:
    verifier = StandInVerifier()
    tier = verified_tier(store_kind, tmp_path, verifier, verifier_timeout=0.05)
    await tier.start()
    try:
        await store(tier, Clock())
        verifier.release = threading.Event()
        probe = await ask(tier)
        assert probe is not None and probe.entry is None  # it would have accepted, had it answered in time
        assert tier.stats["verifier_errors"] == 1
    finally:
        if verifier.release is not None:
            verifier.release.set()
        await tier.stop()


async def test_a_verifier_without_its_model_serves_nothing(store_kind: str, tmp_path: Path) -> None:
    tier = verified_tier(store_kind, tmp_path, OnnxVerifier(tmp_path / "no-model-here"), verifier_threshold=0.5)
    await tier.start()
    try:
        assert tier._failopen.state("verifier").failures == 1  # loading at start failed, and said so
        await store(tier, Clock())
        probe = await ask(tier)
        assert probe is not None and probe.entry is None
        assert tier.stats["verifier_errors"] == 1
    finally:
        await tier.stop()


async def test_shadow_mode_books_would_be_hits_and_their_scores(store_kind: str, tmp_path: Path) -> None:
    verifier = StandInVerifier(score=0.995)
    tier = verified_tier(store_kind, tmp_path, verifier, mode="shadow")
    await tier.start()
    try:
        await store(tier, Clock())
        probe = await ask(tier)
        assert probe is not None and probe.entry is None and probe.shadow_hit
        verifier.value = 0.4
        probe = await ask(tier)
        assert probe is not None and not probe.shadow_hit
        report = tier.report.verifier()
        assert report is not None and report["threshold"] == 0.99
        (today,) = report["days"]
        assert (today["candidates"], today["accepted"], today["refused"]) == (2, 1, 1)
        assert today["scores"]["<=0.995"] == 1 and today["scores"]["<=0.5"] == 1
        assert tier.stats["shadow_hits"] == 1
    finally:
        await tier.stop()


async def test_an_answer_that_calls_a_tool_is_not_stored(store_kind: str, tmp_path: Path) -> None:
    tier = verified_tier(store_kind, tmp_path, StandInVerifier())
    await tier.start()
    try:
        clock = Clock()
        probe = await tier.lookup(body(STORED), scope="s", namespace="", request_id="r")
        assert probe is not None
        answer = entry(clock)
        answer.completion["choices"][0]["message"]["tool_calls"] = [
            {"id": "t1", "type": "function", "function": {"name": "reset", "arguments": "{}"}}]
        tier.remember(probe, answer, namespace="")
        await tier.flush()
        assert await tier.count() == 0 and tier.stats["skipped_tool_answers"] == 1
    finally:
        await tier.stop()


async def test_verification_counts_and_books_each_decision() -> None:
    stats: Counter[str] = Counter()
    verifier = StandInVerifier(score=0.98)
    verification = Verification(verifier, threshold=0.99, timeout=30.0, stats=stats)
    assert await verification.check("a", "b") == (False, 0.98)
    verifier.value = 0.99
    assert await verification.check("a", "b") == (True, 0.99)  # the threshold itself is accepted
    assert stats == Counter({"refused_verifier": 1})


def test_the_score_book_keeps_one_record_a_day_and_the_last_days() -> None:
    book = ScoreBook(days=2)
    book.note(0.05, False, now=0.0)
    book.note(1.0, True, now=DAY)
    book.note(0.3, False, now=DAY + 60)
    book.note(None, False, now=2 * DAY)
    days = book.report()
    assert [d["day"] for d in days] == ["1970-01-02", "1970-01-03"]  # the first day is gone
    assert days[0]["candidates"] == 2 and days[0]["scores"]["<=1"] == 1 and days[0]["scores"]["<=0.3"] == 1
    assert days[1]["errors"] == 1 and sum(days[1]["scores"].values()) == 0
    assert list(days[0]["scores"]) == [f"<={b:g}" for b in BUCKETS]
