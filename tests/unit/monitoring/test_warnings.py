"""The proxy's warnings, one rule at a time, on samples with exact values (the rules of alerts.yml)."""

from __future__ import annotations

from proxy.monitoring.warnings import Sample, Thresholds, evaluate

T = Thresholds()


def names(samples: list[Sample], thresholds: Thresholds = T) -> dict[str, dict[str, object]]:
    return {f"{w.name}{dict(w.labels)}": {"value": w.value, "threshold": w.threshold}
            for w in evaluate(samples, thresholds)}


def test_nothing_to_say_without_samples_or_traffic() -> None:
    assert evaluate([], T) == []
    assert evaluate([Sample(0), Sample(600)], T) == []


def test_hit_rate_below_the_threshold_over_the_window() -> None:
    samples = [Sample(0, hits=0, misses=0), Sample(300, hits=1, misses=10), Sample(600, hits=2, misses=20)]
    assert names(samples) == {"hit_rate_low{}": {"value": 0.0909, "threshold": 0.2}}
    [warning] = evaluate(samples, T)
    assert warning.message == "hit rate 9.1% over the last 10 min (22 requests)"


def test_hit_rate_needs_enough_requests_and_a_minute_of_samples() -> None:
    assert names([Sample(0), Sample(600, hits=1, misses=10)]) == {}  # 11 < ALERT_MIN_REQUESTS
    assert names([Sample(0), Sample(59, hits=0, misses=100)]) == {}  # under a minute apart
    assert names([Sample(0), Sample(600, hits=10, misses=30)]) == {}  # 25 % is fine
    assert names([Sample(0), Sample(600, misses=100)], Thresholds(hit_rate_below=0)) == {}  # off


def test_only_the_window_counts() -> None:
    old_misses = Sample(0, misses=1000)
    samples = [Sample(-10_000), old_misses, Sample(1000, hits=500, misses=1000), Sample(1600, hits=1000, misses=1100)]
    assert names(samples) == {}  # over the last 600 s: 500 hits of 600


def test_evictions_a_minute_per_level() -> None:
    samples = [Sample(0, evictions={"memory": 0, "disk": 0}), Sample(300, evictions={"memory": 300, "disk": 30_001})]
    assert names(samples) == {"evictions_high{'tier': 'disk'}": {"value": 6000.2, "threshold": 100.0}}


def test_a_level_nearly_full_holds_now() -> None:
    assert names([Sample(0, fill={"disk": 0.95, "memory": 0.5})]) == {
        "store_full{'tier': 'disk'}": {"value": 0.95, "threshold": 0.9}}


def test_upstream_error_share() -> None:
    samples = [Sample(0), Sample(300, requests=100, errors=6)]
    assert names(samples) == {"upstream_errors{}": {"value": 0.06, "threshold": 0.05}}
    assert names([Sample(0), Sample(300, requests=100, errors=5)]) == {}


def test_dependency_down_and_fail_open_rising() -> None:
    samples = [Sample(0, failopen={"redis": 0}),
               Sample(120, failopen={"redis": 30, "qdrant": 1}, down=frozenset({"redis"}))]
    assert names(samples) == {"failopen_rising{'component': 'redis'}": {"value": 15.0, "threshold": 10.0},
                              "dependency_down{'component': 'redis'}": {"value": 1.0, "threshold": 0.0}}


def test_false_hits_over_the_hour() -> None:
    samples = [Sample(0, false_hits=2), Sample(1800, false_hits=5), Sample(3600, false_hits=8)]
    assert names(samples) == {"false_hits{}": {"value": 6.0, "threshold": 5.0}}
    assert names(samples, Thresholds(false_hits_per_hour=6)) == {}
