"""proxy.probe.verdict.decide: each verdict from its evidence, drift, contamination; unknown is never 0."""

from __future__ import annotations

from typing import Any

from proxy.core.usage import normalize_usage
from proxy.probe.catalog import Advertised
from proxy.probe.exchange import CheckResult, Exchange
from proxy.probe.verdict import decide


def ex(role: str, cached: int | None, *, prompt: int = 2048, status: int = 200) -> Exchange:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": 1}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    out = Exchange("m", "basic", "s", role, "run", 0.0, status=status)
    out.usage = normalize_usage(usage)
    return out


def result(name: str, **figures: Any) -> dict[str, CheckResult]:
    return {name: CheckResult(name, figures)}


REPEATS = [ex("prime", 0), ex("repeat", 1920), ex("repeat", 1920), ex("repeat", 1920)]


def test_caches() -> None:
    verdict = decide(result("basic", hit_ratio=1.0), REPEATS, Advertised(caching=True))
    assert (verdict.verdict, verdict.hint, verdict.hit_ratio, verdict.contaminated, verdict.drift) == (
        "caches", None, 1.0, False, None)


def test_no_caching_and_drift() -> None:
    evidence = [ex("prime", 0), ex("repeat", 0), ex("repeat", 0)]
    verdict = decide(result("basic", hit_ratio=0.0), evidence, Advertised(caching=True))
    assert (verdict.verdict, verdict.hit_ratio, verdict.drift) == ("no_caching", 0.0, "advertised_not_observed")
    assert decide({}, REPEATS, Advertised(caching=False)).drift == "observed_not_advertised"
    assert decide({}, REPEATS, Advertised()).drift is None  # nothing advertised is not "no caching"


def test_unknown_when_no_cache_field() -> None:
    evidence = [ex("prime", None), ex("repeat", None)]
    results = {**result("basic", hit_ratio=None), **result("latency", speedup=3.0)}
    verdict = decide(results, evidence, Advertised(caching=True))
    assert (verdict.verdict, verdict.hit_ratio, verdict.drift) == ("unknown", None, None)
    assert verdict.notes == ("the upstream reports no cache field",
                             "repeats answer 3x faster: it may cache without saying so")
    assert decide({}, [ex("prime", 0, status=502)], Advertised()).verdict == "unknown"


def test_routing_limited_and_needs_hint() -> None:
    persistence = result("persistence", routing_limited=True, routing_hint="x-grok-conv-id",
                         hit_ratio_with_hint=1.0, hit_ratio_without_hint=0.25)
    verdict = decide(persistence, REPEATS, Advertised())
    assert (verdict.verdict, verdict.hint, verdict.hit_ratio) == ("routing_limited", "x-grok-conv-id", 1.0)
    hints = result("hints", needed="cache_control", hit_ratio=1.0, hit_ratio_by_hint={"none": 0.0})
    assert (decide(hints, REPEATS, Advertised()).verdict, decide(hints, REPEATS, Advertised()).hint) == (
        "needs_hint", "cache_control")
    pinned = result("hints", needed="prompt_cache_key", hit_ratio=1.0, hit_ratio_by_hint={"none": 0.5})
    assert decide(pinned, REPEATS, Advertised()).verdict == "routing_limited"


def test_a_cached_first_request_is_contamination_not_a_hit() -> None:
    evidence = [ex("prime", 1024), ex("repeat", 0), ex("repeat", 0)]
    verdict = decide(result("basic", hit_ratio=0.0), evidence, Advertised())
    assert (verdict.verdict, verdict.contaminated) == ("no_caching", True)
    assert verdict.notes[0].startswith("a fresh prompt's first request was served from cache")
