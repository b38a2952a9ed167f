"""The API's answers, shaped from stored rows: health by its rule, the mean cache rate, series and usage."""

from __future__ import annotations

from typing import Any

from proxy.probe import views
from proxy.probe.records import VerdictRow


def verdict(model: str, verdict: str, *, ts: float = 1000.0, cache_rate: float | None = None,
            error: str | None = None, drift: str | None = None, **report: Any) -> VerdictRow:
    return VerdictRow(ts=ts, started_at=ts - 10, cycle_id="c", run_id="r", model=model, verdict=verdict, hint=None,
                      hit_ratio=None, cache_rate=cache_rate, min_prefix_tokens=None, step_tokens=None, ttl_lower=None,
                      ttl_upper=None, speedup=None, contaminated=False, advertised_caching=None, drift=drift,
                      tokens_spent=10, cost_usd=None, error=error, report=report)


def test_health_by_its_rule() -> None:
    now, interval = 10_000.0, 600.0
    fresh = {"a": now - 100}
    assert views.health([], {}, now=now, interval=interval)["status"] == "unknown"
    ok = [verdict("a", "caches"), verdict("b", "no_caching")]
    assert views.health(ok, fresh, now=now, interval=interval) == {"status": "healthy", "rule": views.HEALTH_RULE,
                                                                   "reasons": []}
    failed = [*ok, verdict("c", "unknown", error="basic: every request failed: 500")]
    assert views.health(failed, fresh, now=now, interval=interval)["reasons"] == [
        "c: its latest run failed (basic: every request failed: 500)"]
    drift = [verdict("a", "caches"), verdict("l", "no_caching", drift="advertised_not_observed")]
    assert views.health(drift, fresh, now=now, interval=interval)["status"] == "degraded"
    nothing = [verdict("l", "no_caching")]
    assert views.health(nothing, fresh, now=now, interval=interval) == {
        "status": "unhealthy", "rule": views.HEALTH_RULE, "reasons": ["no tested model caches"]}
    stale = views.health(ok, {"a": now - 1801}, now=now, interval=interval)
    assert (stale["status"], stale["reasons"]) == ("unhealthy", ["the last successful run ended 1801 s ago "
                                                                 "(over 3 intervals)"])


def test_mean_cache_rate_counts_no_caching_as_0_and_leaves_unknown_out() -> None:
    rows = [verdict("a", "caches", cache_rate=0.9), verdict("b", "no_caching"), verdict("c", "unknown")]
    assert views.mean_cache_rate(rows) == 0.45
    assert views.mean_cache_rate([verdict("c", "unknown")]) is None


def test_stats() -> None:
    rows = [verdict("a", "caches", ts=900.0, cache_rate=0.8), verdict("b", "needs_hint", ts=950.0, cache_rate=0.6)]
    out = views.stats(rows, None, {"a": 900.0}, now=1000.0, interval=600.0)
    assert {k: out[k] for k in ("last_run", "models_tested", "caching_models", "mean_cache_rate", "verdicts")} == {
        "last_run": 950.0, "models_tested": 2, "caching_models": 2, "mean_cache_rate": 0.7,
        "verdicts": {"caches": 1, "needs_hint": 1}}
    assert out["health"]["status"] == "healthy"


def test_a_model_with_its_stats() -> None:
    row = verdict("a", "caches", provider="OpenAI", pricing={"cached_input_per_1m": 0.1, "input_per_1m": 1.0,
                                                             "saving_per_1m_cached": 0.9})
    stats = {"requests": 8, "repeats": 6, "hits": 3, "prompt_tokens": 1000, "cached_tokens": 250}
    out = views.model(row, stats, 500.0, {"ttl_seconds": [80.0, 100.0], "ttl_status": "measured",
                                          "refresh_on_hit": False})
    assert (out["provider"], out["since"], out["advertised_cache_price"], out["saving_per_1m_cached_usd"]) == (
        "OpenAI", 500.0, 0.1, 0.9)
    assert (out["ttl_seconds"], out["ttl_status"], out["refresh_on_hit"]) == ([80.0, 100.0], "measured", False)
    assert (out["stats"]["hit_rate"], out["stats"]["cached_share"]) == (0.5, 0.25)


def test_history_weights_the_buckets_mean_by_runs() -> None:
    rows = [{"bucket": 0, "model": "a", "runs": 3, "caching": 3, "cache_rate": 0.9, "hit_ratio": 1.0},
            {"bucket": 0, "model": "b", "runs": 1, "caching": 0, "cache_rate": 0.1, "hit_ratio": 0.0},
            {"bucket": 3600, "model": "a", "runs": 1, "caching": 1, "cache_rate": None, "hit_ratio": None}]
    out = views.history(rows, bucket="hour", since=0.0, until=7200.0)
    assert out["series"] == [
        {"bucket": 0, "runs": 4, "caching": 3, "cache_rate": 0.7, "iso": "1970-01-01T00:00:00Z"},
        {"bucket": 3600, "runs": 1, "caching": 1, "cache_rate": None, "iso": "1970-01-01T01:00:00Z"}]
    assert [p["bucket"] for p in out["models"]["a"]] == [0, 3600]


def test_usage_per_day_totals_and_average() -> None:
    days = [{"day": 0, "requests": 4, "prompt_tokens": 1000, "cached_tokens": 600, "completion_tokens": 4,
             "estimated_tokens": 0, "cost_usd": 0.001, "saved_usd": 0.0005},
            {"day": 86400, "requests": 2, "prompt_tokens": 500, "cached_tokens": 0, "completion_tokens": 2,
             "estimated_tokens": 530, "cost_usd": 0.0005, "saved_usd": 0.0}]
    out = views.usage(days, since=0.0, until=172800.0)
    # the day with an answer without usage spent its estimate too: 502 reported + 530 estimated
    assert [(d["date"], d["tokens"], d["savings_percent"]) for d in out["days"]] == [
        ("1970-01-01", 1004, 60.0), ("1970-01-02", 1032, 0.0)]
    assert out["totals"] == {"requests": 6, "prompt_tokens": 1500, "cached_tokens": 600, "completion_tokens": 6,
                             "estimated_tokens": 530, "cost_usd": 0.0015, "saved_usd": 0.0005, "tokens": 2036,
                             "savings_percent": 40.0}
    assert out["daily_average"] == {"requests": 3.0, "prompt_tokens": 750.0, "cached_tokens": 300.0,
                                    "tokens": 1018.0}
    assert views.usage([], since=0.0, until=1.0)["totals"]["savings_percent"] is None
