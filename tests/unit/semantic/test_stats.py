"""GET /metrics/semantic: the tier's own counters, with the store's entry count when it answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from proxy.component import Guard
from proxy.semantic import stats as stats_module
from proxy.semantic.stats import PANEL, SemanticStats


def served(report: SemanticStats) -> dict[str, Any]:
    spec = report.route()
    app = Starlette(routes=[Route(spec.path, spec.endpoint, methods=list(spec.methods))])
    with TestClient(app) as client:
        answer = client.get("/metrics/semantic")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.json()
    return body


async def seven() -> int:
    return 7


def test_every_counter_and_the_refusals_by_guard() -> None:
    counters = Counter({"lookups": 10, "hits": 3, "shadow_hits": 1, "misses": 4, "stored": 4, "refused_negation": 1,
                        "refused_numbers": 2, "refused_feedback": 2, "refused_entity": 0})
    report = SemanticStats(counters, count=seven, mode="serve", threshold=0.9, ready=lambda: True)
    body = served(report)
    assert isinstance(body.pop("timestamp"), float)
    assert body == {"mode": "serve", "ready": True, "threshold": 0.9, "entries": 7, "lookups": 10, "hits": 3,
                    "shadow_hits": 1, "misses": 4, "skipped": 0, "errors": 0, "stored": 4, "store_errors": 0,
                    "expired_removed": 0, "feedback_right": 0, "feedback_wrong": 0, "verifier_errors": 0,
                    "refusals": 5, "refused": {"feedback": 2, "numbers": 2, "negation": 1},
                    "verifier": None}  # refusals largest first, then by name
    assert list(body["refused"]) == ["feedback", "numbers", "negation"]


def test_a_store_that_cannot_count_leaves_the_entries_unknown_and_the_rest_served() -> None:
    async def down() -> int:
        raise ConnectionError("store down")

    report = SemanticStats(Counter({"lookups": 2, "errors": 2}), count=down, mode="shadow", threshold=0.85,
                           ready=lambda: False)
    body = served(report)
    assert (body["entries"], body["lookups"], body["errors"], body["ready"], body["mode"]) == (None, 2, 2, False,
                                                                                                "shadow")
    assert (body["refusals"], body["refused"]) == (0, {})


def test_a_store_that_never_answers_is_not_waited_for_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    async def stuck() -> int:
        await asyncio.Event().wait()  # never set: only the bound ends this
        return 1

    monkeypatch.setattr(stats_module, "COUNT_TIMEOUT", 0.01)
    report = SemanticStats(Counter(), count=stuck, mode="serve", threshold=0.9, ready=lambda: True)
    assert asyncio.run(report.entries()) is None


def test_the_route_is_for_the_monitor_and_the_panel_draws_it() -> None:
    spec = SemanticStats(Counter(), count=seven, mode="serve", threshold=0.9, ready=lambda: True).route()
    assert (spec.path, spec.methods, spec.guard) == ("/metrics/semantic", ("GET",), Guard.MONITOR)
    assert (PANEL.id, PANEL.kind, PANEL.source) == ("semantic", "semantic", "/metrics/semantic")
