"""The verdict for one model, from its tests' figures and what ``/models`` advertises. Pure.

- ``unknown``: no answer reported a cache field at all (absent is not 0);
- ``no_caching``: the field is there, but no repeat ever hit;
- ``routing_limited``: repeats hit about 1/servers of the time without a routing hint and reliably with one;
- ``needs_hint``: nothing hits without a hint, something does with it (``hint`` names it);
- ``caches``: repeats hit without help.

A cached first request of a fresh prompt is contamination: flagged and never counted as a hit.
**Drift** compares the advertised cached-input price with what was observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.probe.catalog import Advertised
from proxy.probe.exchange import CheckResult, Exchange
from proxy.probe.request import ROUTING_HINTS

CACHING = ("caches", "routing_limited", "needs_hint")


@dataclass(frozen=True)
class Verdict:
    verdict: str
    hint: str | None
    hit_ratio: float | None
    contaminated: bool
    advertised_caching: bool | None
    drift: str | None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "hint": self.hint, "hit_ratio": self.hit_ratio,
                "contaminated": self.contaminated, "advertised_caching": self.advertised_caching,
                "drift": self.drift, "notes": list(self.notes)}


def _figures(results: dict[str, CheckResult], name: str) -> dict[str, Any]:
    result = results.get(name)
    return result.figures if result is not None and result.skipped is None else {}


def decide(results: dict[str, CheckResult], exchanges: list[Exchange], advertised: Advertised) -> Verdict:
    answered = [ex for ex in exchanges if ex.ok]
    contaminated = any(ex.role == "prime" and ex.hit for ex in answered)
    notes: list[str] = []
    if contaminated:
        notes.append("a fresh prompt's first request was served from cache: that answer was not counted")
    hits = [ex for ex in answered if ex.role != "prime" and ex.hit]
    basic, hints, persistence = (_figures(results, n) for n in ("basic", "hints", "persistence"))
    hint: str | None = None
    hit_ratio = basic.get("hit_ratio")
    if not answered:
        verdict = "unknown"
        notes.append("no request was answered")
    elif not any(ex.usage.cache_reported for ex in answered):
        verdict = "unknown"
        notes.append("the upstream reports no cache field")
        speedup = _figures(results, "latency").get("speedup")
        if speedup and speedup > 1.5:
            notes.append(f"repeats answer {speedup:g}x faster: it may cache without saying so")
    elif not hits:
        verdict = "no_caching"
        hit_ratio = 0.0
    elif persistence.get("routing_limited"):
        verdict, hint = "routing_limited", persistence.get("routing_hint")
        hit_ratio = persistence.get("hit_ratio_with_hint")
    elif hints.get("needed"):
        hint = hints["needed"]
        baseline = hints.get("hit_ratio_by_hint", {}).get("none") or 0.0
        verdict = "routing_limited" if hint in ROUTING_HINTS and baseline > 0 else "needs_hint"
        hit_ratio = hints.get("hit_ratio")
    else:
        verdict = "caches"
        if persistence.get("hit_ratio_without_hint") is not None:
            hit_ratio = persistence["hit_ratio_without_hint"]
    observed = verdict in CACHING
    drift = None
    if verdict != "unknown" and advertised.caching is not None and advertised.caching != observed:
        drift = "advertised_not_observed" if advertised.caching else "observed_not_advertised"
        notes.append("/models advertises a cached-input price, but no caching was observed" if advertised.caching
                     else "caching was observed, but /models advertises no cached-input price")
    return Verdict(verdict, hint, hit_ratio, contaminated, advertised.caching, drift, tuple(notes))
