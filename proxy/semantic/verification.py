"""The verifier's step in a lookup: the best candidate the search and the cheap guards let through is read
together with the new prompt by the cross-encoder (:mod:`proxy.semantic.verifier`), and served only if it
scores at least the threshold.

It fails closed: a verifier that is not loaded, raises, or takes longer than ``timeout`` refuses the
candidate (a miss, counted as ``verifier_errors``), never serves it unverified. It runs on a worker thread
(ONNX Runtime lets the event loop go on) and only when a candidate exists, so a request with nothing above
the search threshold pays nothing for it. What it decided is counted (``refused_verifier``) and, per day,
its scores (:class:`ScoreBook`: what shadow mode shows an operator before turning ``serve`` on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from typing import Any

from proxy.semantic.verifier import Verifier

logger = logging.getLogger("cachegate.semantic")

#: The score buckets a day's record keeps (upper bounds): where the candidates fell around the threshold.
BUCKETS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0)
DAYS = 30


class ScoreBook:
    """Per UTC day: how many candidates the verifier saw, accepted and refused, and their scores' buckets."""

    def __init__(self, days: int = DAYS) -> None:
        self._days: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._keep = days

    def note(self, score: float | None, accepted: bool, *, now: float | None = None) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
        record = self._days.get(day)
        if record is None:
            record = self._days[day] = {"day": day, "candidates": 0, "accepted": 0, "refused": 0, "errors": 0,
                                        "scores": Counter()}
            while len(self._days) > self._keep:
                self._days.popitem(last=False)
        record["candidates"] += 1
        if score is None:
            record["errors"] += 1
            return
        record["accepted" if accepted else "refused"] += 1
        record["scores"][next(bound for bound in BUCKETS if score <= bound)] += 1

    def report(self) -> list[dict[str, Any]]:
        return [{**record, "scores": {f"<={bound:g}": record["scores"].get(bound, 0) for bound in BUCKETS}}
                for record in self._days.values()]


class Verification:
    def __init__(self, verifier: Verifier, *, threshold: float, timeout: float, stats: Counter[str]) -> None:
        self.verifier = verifier
        self.threshold = threshold
        self.timeout = timeout
        self.stats = stats
        self.days = ScoreBook()

    async def check(self, stored: str, asked: str) -> tuple[bool, float | None]:
        """Whether ``stored``'s answer may answer ``asked``, and the score (``None``: the verifier failed)."""
        try:
            async with asyncio.timeout(self.timeout):
                scores = await asyncio.to_thread(self.verifier.score, [(stored, asked)])
            score = float(scores[0])
        except Exception as exc:  # not loaded, broken, slow: fail closed, this candidate is a miss
            self.stats["verifier_errors"] += 1
            self.days.note(None, False)
            logger.warning("the verifier failed, the candidate is not served: %r", exc)
            return False, None
        accepted = score >= self.threshold
        if not accepted:
            self.stats["refused_verifier"] += 1
        self.days.note(score, accepted)
        return accepted, score
