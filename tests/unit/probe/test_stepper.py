"""The TTL state kept across cycles: it survives the store as JSON, and shows the bracket it has."""

from __future__ import annotations

import orjson

from proxy.probe.stepper import TtlState, ttl_figures
from proxy.probe.ttl import TtlSearch


def state() -> TtlState:
    search = TtlSearch(5.0, 3600.0)
    for gap, hit in ((5.0, True), (20.0, True), (80.0, False)):
        search.record(gap, hit)
    return TtlState("s1", 100.0, search, {"settle": 1.0, "hints": ["prompt_cache_key"], "size": 2048,
                                           "small_size": 1408}, {"per_word": 1.0, "overhead": 5.0},
                    pending={"nonce": "probe-x", "words": 1400, "stage": "gap", "gap": 40.0, "b": None,
                             "step": "gap 40s", "primed_at": 200.0, "due": 240.0})


def test_state_round_trips_through_json() -> None:
    original = state()
    again = TtlState.from_dict(orjson.loads(orjson.dumps(original.as_dict())))
    assert again == original
    assert again.search.next_gap() == original.search.next_gap() == 40.0


def test_figures_while_measuring_and_once_measured() -> None:
    measuring = state()
    assert measuring.figures() == {"ttl_seconds": [20.0, 80.0], "ttl_status": "measuring", "refresh_on_hit": None,
                                   "ttl_due": 240.0}
    measuring.completed_at, measuring.bracket, measuring.refresh_on_hit = 300.0, [40.0, 50.0], True
    measuring.pending = None
    assert ttl_figures(measuring.as_dict()) == {"ttl_seconds": [40.0, 50.0], "ttl_status": "measured",
                                                "refresh_on_hit": True, "ttl_due": None}
    fresh = TtlState("s2", 0.0, TtlSearch(5.0, 60.0), {}, {})
    assert fresh.figures()["ttl_seconds"] is None
