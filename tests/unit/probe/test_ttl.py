"""proxy.probe.ttl.TtlSearch: the bracket contains the TTL, the plan for refresh-on-hit, resumable state."""

from __future__ import annotations

import pytest

from proxy.probe.ttl import TtlSearch


def run(ttl: float, low: float = 5.0, high: float = 3600.0) -> TtlSearch:
    search = TtlSearch(low, high)
    while (gap := search.next_gap()) is not None:
        search.record(gap, gap < ttl)
    return search


@pytest.mark.parametrize("ttl", [6.0, 30.0, 90.0, 150.0, 300.0, 420.0, 1800.0, 3599.0])
def test_bracket_contains_the_ttl(ttl: float) -> None:
    search = run(ttl)
    lower, upper = search.bracket  # type: ignore[misc]
    assert lower < ttl <= upper
    assert upper / lower <= 1.25 or upper - lower <= 1.0


def test_gaps_grow_by_four_then_bisect() -> None:
    assert [gap for gap, _ in run(420.0).steps] == [5.0, 20.0, 80.0, 320.0, 1280.0, 640.0, 452.5, 380.5]


def test_outside_the_range() -> None:
    assert run(2.0).bracket == [0.0, 5.0]  # the shortest gap missed
    assert run(9999.0).bracket == [3600.0, None]  # the longest gap still hit
    assert TtlSearch(5, 60).bracket is None


def test_refresh_plan_needs_a_tight_bracket() -> None:
    search = TtlSearch(5, 3600, lower=400.0, upper=450.0)
    a, b = search.refresh_plan()  # type: ignore[misc]
    assert (a, b) == (312.5, 312.5)
    assert b < 400.0 and a + b > 450.0
    assert TtlSearch(5, 3600, lower=100.0, upper=300.0).refresh_plan() is None
    assert TtlSearch(5, 3600, lower=None, upper=5.0).refresh_plan() is None


def test_state_round_trips() -> None:
    search = TtlSearch(5.0, 3600.0)
    for gap, hit in ((5.0, True), (20.0, True), (80.0, False)):
        search.record(gap, hit)
    again = TtlSearch.from_dict(search.as_dict())
    assert again == search
    assert again.next_gap() == search.next_gap() == 40.0
