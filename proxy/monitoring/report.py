"""What ``/metrics`` (JSON), ``/metrics/csv`` and ``/health/detailed`` say, built from the observer's state.

All-time counters come from the savings ledger (every replica, across restarts); latency percentiles
and rates from the sliding window of this process (``METRICS_WINDOW_SECONDS``).
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from typing import Any

from proxy.monitoring.ledger import GLOBAL, Key
from proxy.monitoring.observer import MonitoringObserver
from proxy.monitoring.usage import iso
from proxy.monitoring.window import summarize

NOTE = ("Dollars use each model's price per 1M tokens (see 'pricing'): a cache hit saves what its stored answer's "
        "prompt and completion tokens cost at the input and output price; provider prompt caching saves the "
        "difference between the input and the cached-input price. Unknown models use the fallback price.")

HIT_LABELS = ("exact_hit", "semantic_hit")
CSV_COLUMNS = ("kind", "name", "requests", "requests_per_second", "p50_ms", "p90_ms", "p99_ms", "exact_hits",
               "semantic_hits", "misses", "bypassed", "hit_rate_percent", "errors_5xx", "prompt_tokens",
               "completion_tokens", "tokens_saved", "provider_cached_tokens", "cost_spent_usd", "cost_saved_usd")


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _usd(value: float) -> float:
    return round(value, 8)


def by_scope(totals: dict[Key, float], prefix: str) -> dict[str, dict[str, float]]:
    """``{"model:gpt-4o": {...}}`` → ``{"gpt-4o": {...}}`` for scopes starting with ``prefix``."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (scope, name), value in totals.items():
        if scope.startswith(prefix):
            out[scope[len(prefix):]][name] = value
    return out


def _int(values: dict[str, float], name: str) -> int:
    return round(values.get(name, 0))


def cache_performance(values: dict[str, float]) -> dict[str, Any]:
    exact, semantic = _int(values, "exact_hits"), _int(values, "semantic_hits")
    misses, bypassed = _int(values, "misses"), _int(values, "bypassed")
    stale = _int(values, "stale_answers")  # stale-if-error: the upstream failed, an expired entry answered
    total = exact + semantic + misses + bypassed + stale
    return {"exact_hits": exact, "semantic_hits": semantic, "total_hits": exact + semantic, "misses": misses,
            "bypassed": bypassed, "stale_answers": stale, "total_requests": total,
            "hit_rate_percent": _pct(exact + semantic, total), "shadow_hits": _int(values, "shadow_hits")}


def rate_window(observer: MonitoringObserver) -> float:
    """Seconds the window rates are over: the window, or the uptime while the process is younger."""
    return max(1e-9, min(float(observer.requests.seconds), observer.uptime()))


class Report:
    def __init__(self, observer: MonitoringObserver) -> None:
        self.observer = observer

    def json(self, *, cache_usage: dict[str, Any], components: dict[str, Any],
             ledger_backend: str) -> dict[str, Any]:
        obs = self.observer
        obs.fold()
        ledger = obs.ledger
        totals = ledger.totals()
        glob = by_scope(totals, GLOBAL)[""]
        saved_tokens, used_tokens = _int(glob, "tokens_saved"), _int(glob, "tokens_used")
        saved, spent = glob.get("cost_saved_usd", 0.0), glob.get("cost_spent_usd", 0.0)
        samples = obs.requests.samples()
        proxied = [s for s in samples if s[2].startswith("/v1/")]
        streams = obs.streams.samples()
        span = rate_window(obs)
        return {
            "cache_performance": cache_performance(glob),
            "token_usage": {
                "tokens_saved": saved_tokens, "tokens_saved_exact": _int(glob, "tokens_saved_exact"),
                "tokens_saved_semantic": _int(glob, "tokens_saved_semantic"), "tokens_used": used_tokens,
                "prompt_tokens": _int(glob, "prompt_tokens"), "completion_tokens": _int(glob, "completion_tokens"),
                "total_tokens_without_cache": saved_tokens + used_tokens,
                "provider_cached_tokens": _int(glob, "provider_cached_tokens"),
            },
            "cost_analysis": {
                "cost_saved_usd": _usd(saved), "cost_saved_exact_usd": _usd(glob.get("cost_saved_exact_usd", 0.0)),
                "cost_saved_semantic_usd": _usd(glob.get("cost_saved_semantic_usd", 0.0)),
                "cost_saved_provider_usd": _usd(glob.get("cost_saved_provider_usd", 0.0)),
                "cost_spent_usd": _usd(spent), "total_cost_without_cache_usd": _usd(saved + spent),
                "savings_percent": _pct(saved, saved + spent), "note": NOTE,
            },
            "pricing": obs.pricing.describe(),
            "latency": {
                "unit": "ms", "window_seconds": obs.requests.seconds,
                "all": summarize((s[1] for s in proxied), scale=1000),
                "hits": summarize((s[1] for s in proxied if s[3] in HIT_LABELS), scale=1000),
                "exact_hits": summarize((s[1] for s in proxied if s[3] == "exact_hit"), scale=1000),
                "semantic_hits": summarize((s[1] for s in proxied if s[3] == "semantic_hit"), scale=1000),
                "misses": summarize((s[1] for s in proxied if s[3] == "miss"), scale=1000),
            },
            "streaming": {
                "active": obs.active_streams,
                "completed": _int(glob, "streams_completed"), "failed": _int(glob, "streams_failed"),
                "window_seconds": obs.streams.seconds,
                "ttft": {"unit": "ms", **summarize((s[1] for s in streams), scale=1000)},
                "ttft_hits": {"unit": "ms", **summarize((s[1] for s in streams if s[2] in HIT_LABELS), scale=1000)},
                "ttft_misses": {"unit": "ms", **summarize((s[1] for s in streams if s[2] == "miss"), scale=1000)},
                # the upstream's generation speed: replayed hits are not generated, so they are left out
                "tokens_per_second": summarize((s[1] for s in obs.stream_rates.samples() if s[2] not in HIT_LABELS),
                                               digits=1),
            },
            "by_model": self._by_model(totals, samples, span),
            "by_endpoint": self._by_endpoint(totals, samples, span),
            "errors": self._errors(glob, totals, components),
            "cache": cache_usage,
            "window": {"seconds": obs.requests.seconds, "requests": len(samples),
                       "requests_per_second": round(len(samples) / span, 3)},
            "ledger": {"backend": ledger_backend, "since": iso(ledger.first_started_at)
                       if ledger.first_started_at else None, "stale": ledger.stale,
                       "http_requests": _int(glob, "http_requests")},
            "process": {"uptime_seconds": round(obs.uptime(), 3), "started_at": iso(obs.metrics.started_at)},
            "timestamp": time.time(),
        }

    def _model_row(self, name: str, values: dict[str, float]) -> dict[str, Any]:
        perf = cache_performance(values)
        return {"model": name, "requests": perf["total_requests"], "exact_hits": perf["exact_hits"],
                "semantic_hits": perf["semantic_hits"], "misses": perf["misses"], "bypassed": perf["bypassed"],
                "hit_rate_percent": perf["hit_rate_percent"], "prompt_tokens": _int(values, "prompt_tokens"),
                "completion_tokens": _int(values, "completion_tokens"), "tokens_used": _int(values, "tokens_used"),
                "tokens_saved": _int(values, "tokens_saved"),
                "provider_cached_tokens": _int(values, "provider_cached_tokens"),
                "cost_spent_usd": _usd(values.get("cost_spent_usd", 0.0)),
                "cost_saved_usd": _usd(values.get("cost_saved_usd", 0.0))}

    def _by_model(self, totals: dict[Key, float], samples: list[Any], span: float) -> list[dict[str, Any]]:
        window: dict[str, list[float]] = defaultdict(list)
        for sample in samples:
            if sample[5] is not None:
                window[sample[5]].append(sample[1])
        rows = []
        for name, values in sorted(by_scope(totals, "model:").items()):
            price, fallback = self.observer.pricing.lookup(name, note=False)  # shown, not a model that was priced
            latency = summarize(window.get(name, ()), scale=1000)
            rows.append({**self._model_row(name, values), "pricing_fallback": fallback,
                         "price": price.as_dict(), "requests_per_second": round(latency["count"] / span, 3),
                         "latency_ms": latency})
        return rows

    def _by_endpoint(self, totals: dict[Key, float], samples: list[Any], span: float) -> list[dict[str, Any]]:
        window: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for sample in samples:
            window[sample[2]].append((sample[1], sample[4]))
        scopes = by_scope(totals, "route:")
        rows = []
        for route in sorted(set(scopes) | set(window)):
            values, recent = scopes.get(route, {}), window.get(route, [])
            errors = sum(1 for _, status in recent if status >= 500)
            rows.append({"route": route, **{k: v for k, v in self._model_row(route, values).items() if k != "model"},
                         "requests": _int(values, "requests"), "errors_5xx": _int(values, "errors_5xx"),
                         "errors_4xx": _int(values, "errors_4xx"),
                         "requests_per_second": round(len(recent) / span, 3),
                         "error_rate_percent": _pct(errors, len(recent)),
                         "latency_ms": summarize((d for d, _ in recent), scale=1000)})
        return rows

    def _errors(self, glob: dict[str, float], totals: dict[Key, float],
                components: dict[str, Any]) -> dict[str, Any]:
        by_component = {name: {kind: int(count) for kind, count in sorted(values.items())}
                        for name, values in sorted(by_scope(totals, "error:").items())}
        return {"requests_5xx": _int(glob, "errors_5xx"), "requests_4xx": _int(glob, "errors_4xx"),
                "stream_failures": _int(glob, "streams_failed"), "by_component": by_component,
                "components": components}

    def detailed_health(self) -> dict[str, Any]:
        """Uptime, request rate, error rate and per-endpoint rate and p50/p99 over the window."""
        obs = self.observer
        obs.fold()
        samples = obs.requests.samples()
        span = rate_window(obs)
        errors = sum(1 for s in samples if s[4] >= 500)
        error_rate = _pct(errors, len(samples))
        status = "healthy" if error_rate < 5 else ("degraded" if error_rate <= 10 else "unhealthy")
        endpoints: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for s in samples:
            endpoints[s[2]].append((s[1], s[4]))
        per_endpoint = {}
        for route, recent in sorted(endpoints.items()):
            latency = summarize((d for d, _ in recent), scale=1000)
            per_endpoint[route] = {"requests": len(recent), "requests_per_second": round(len(recent) / span, 3),
                                   "error_rate_percent": _pct(sum(1 for _, st in recent if st >= 500), len(recent)),
                                   "p50_ms": latency["p50"], "p99_ms": latency["p99"]}
        return {"status": status, "uptime_seconds": round(obs.uptime(), 3), "window_seconds": obs.requests.seconds,
                "requests": len(samples), "requests_per_second": round(len(samples) / span, 3),
                "errors": errors, "error_rate_percent": error_rate, "endpoints": per_endpoint}

    def csv(self, totals: dict[Key, float] | None = None) -> str:
        obs = self.observer
        obs.fold()
        totals = totals if totals is not None else obs.ledger.totals()
        samples = obs.requests.samples()
        span = rate_window(obs)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for kind, rows, key in (("endpoint", self._by_endpoint(totals, samples, span), "route"),
                                ("model", self._by_model(totals, samples, span), "model")):
            for row in rows:
                latency = row["latency_ms"]
                writer.writerow([kind, row[key], row["requests"], row["requests_per_second"], latency["p50"],
                                 latency["p90"], latency["p99"], row["exact_hits"], row["semantic_hits"],
                                 row["misses"], row["bypassed"], row["hit_rate_percent"], row.get("errors_5xx", ""),
                                 row["prompt_tokens"], row["completion_tokens"], row["tokens_saved"],
                                 row["provider_cached_tokens"], row["cost_spent_usd"], row["cost_saved_usd"]])
        return out.getvalue()
