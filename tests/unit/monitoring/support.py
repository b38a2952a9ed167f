"""Helpers for the monitoring unit tests: an in-memory ledger store and request records."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from proxy.contracts import RequestRecord
from proxy.monitoring.ledger import Key, Ledger
from proxy.monitoring.observer import MonitoringObserver
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.registry import Metrics


class MemoryStore:
    name = "memory"
    shared = False

    def __init__(self, fail: bool = False) -> None:
        self.data: dict[Key, float] = {}
        self.fail = fail
        self.writes = 0

    async def load(self) -> dict[Key, float]:
        if self.fail:
            raise ConnectionError("store down")
        return dict(self.data)

    async def add(self, deltas: Mapping[Key, float]) -> None:
        if self.fail:
            raise ConnectionError("store down")
        self.writes += 1
        for key, amount in deltas.items():
            self.data[key] = self.data.get(key, 0) + amount

    async def first_started(self, now: float) -> float:
        if self.fail:
            raise ConnectionError("store down")
        return 1.0

    async def aclose(self) -> None:
        return None


def make_observer(**kwargs: Any) -> MonitoringObserver:
    kwargs.setdefault("metrics", Metrics())
    return MonitoringObserver(ledger=Ledger(MemoryStore()), pricing=Pricing(), window_seconds=300, **kwargs)


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def record(outcome: str = "miss", *, model: str | None = "gpt-4o-mini", status: int = 200,
           route: str = "/v1/chat/completions", **fields: Any) -> RequestRecord:
    out = RequestRecord(request_id="r1", route=route, method="POST", started_at=time.time(), status=status, model=model,
                        outcome=outcome, duration=fields.pop("duration", 0.01), **fields)
    if outcome in ("exact_hit", "semantic_hit"):
        out.tier = outcome.split("_")[0]
    return out
