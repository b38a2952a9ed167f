"""The Prometheus metrics of one app, in their own ``CollectorRegistry`` (no module-level state).

Counters here are this process's since it started (Prometheus handles restarts and sums replicas); the
all-time, all-replica totals of the savings ledger are exported beside them as ``cachegate_ledger_*``
gauges by :class:`LedgerCollector`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

NS = "cachegate"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0)
LOOKUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500, 1000, 5000, 20000, 100000)


class Metrics:
    """Every metric cachegate exports; label children are cached, so the hot path skips ``labels()``."""

    def __init__(self, *, started_at: float | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.started_at = started_at or time.time()
        self._monotonic_start = time.monotonic()
        r = self.registry
        self.http_requests = Counter(f"{NS}_http_requests", "HTTP requests by route, method and status.",
                                     ["route", "method", "status"], registry=r)
        self.cache_lookups = Counter(f"{NS}_cache_lookups",
                                     "Cache lookups by tier and outcome (hit, miss, bypass, error, shadow_hit).",
                                     ["tier", "outcome"], registry=r)
        self.request_duration = Histogram(f"{NS}_request_duration_seconds",
                                          "Time to the last byte of a response, by cache outcome.",
                                          ["cache"], buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_duration = Histogram(f"{NS}_upstream_duration_seconds",
                                           "Time the upstream took to answer a chat request completely.",
                                           ["stream"], buckets=LATENCY_BUCKETS, registry=r)
        self.lookup_duration = Histogram(f"{NS}_cache_lookup_duration_seconds", "Cache lookup time by tier.",
                                         ["tier"], buckets=LOOKUP_BUCKETS, registry=r)
        self.embedding_duration = Histogram(f"{NS}_embedding_duration_seconds",
                                            "Time to embed a prompt for the semantic tier.",
                                            buckets=LOOKUP_BUCKETS, registry=r)
        self.stream_ttft = Histogram(f"{NS}_stream_ttft_seconds", "Streams: time to the first byte, by cache outcome.",
                                     ["cache"], buckets=LATENCY_BUCKETS, registry=r)
        self.stream_tps = Histogram(f"{NS}_stream_tokens_per_second",
                                    "Streams: completion tokens per second after the first byte, by cache outcome.",
                                    ["cache"], buckets=TPS_BUCKETS, registry=r)
        self.streams = Counter(f"{NS}_streams", "Finished streamed responses, by result (completed, failed).",
                               ["result"], registry=r)
        self.tokens = Counter(f"{NS}_tokens", "Tokens by model and kind (prompt, completion, saved, provider_cached).",
                              ["model", "kind"], registry=r)
        self.cost = Counter(f"{NS}_cost_usd", "US dollars by model and kind (spent, saved).",
                            ["model", "kind"], registry=r)
        self.errors = Counter(f"{NS}_errors", "Errors by component and type.", ["component", "type"], registry=r)
        self.cache_entries = Gauge(f"{NS}_cache_entries", "Entries held, by cache tier.", ["tier"], registry=r)
        self.cache_bytes = Gauge(f"{NS}_cache_bytes", "Bytes held, by cache tier.", ["tier"], registry=r)
        self.active_streams = Gauge(f"{NS}_active_streams", "Streamed responses being sent right now.", registry=r)
        self.dropped = Counter(f"{NS}_monitoring_dropped", "Usage rows or log lines dropped because a writer fell "
                               "behind.", ["sink"], registry=r)
        uptime = Gauge(f"{NS}_uptime_seconds", "Seconds since this process started serving.", registry=r)
        uptime.set_function(lambda: time.monotonic() - self._monotonic_start)
        start = Gauge(f"{NS}_start_time_seconds", "Unix time this process started.", registry=r)
        start.set(self.started_at)
        ProcessCollector(namespace=NS, registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: a dict lookup instead of prometheus-client's label checks."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def uptime(self) -> float:
        return time.monotonic() - self._monotonic_start


#: ledger key (scope "global") → (gauge name suffix, help)
LEDGER_GAUGES = {
    "requests": ("requests", "All-time chat requests (all replicas, survives restarts)."),
    "exact_hits": ("exact_hits", "All-time exact-tier hits."),
    "semantic_hits": ("semantic_hits", "All-time semantic-tier hits."),
    "misses": ("misses", "All-time misses."),
    "bypassed": ("bypassed", "All-time requests that bypassed the cache."),
    "tokens_saved": ("tokens_saved", "All-time tokens served from the cache instead of the upstream."),
    "tokens_used": ("tokens_used", "All-time tokens the upstream charged for."),
    "provider_cached_tokens": ("provider_cached_tokens", "All-time prompt tokens the provider served from its "
                                                         "own prompt cache."),
    "cost_saved_usd": ("cost_saved_usd", "All-time US dollars saved (both cache tiers and provider caching)."),
    "cost_spent_usd": ("cost_spent_usd", "All-time US dollars spent upstream."),
}


class LedgerCollector(Collector):
    """Exports the ledger's all-time totals (read from ``totals()``) as gauges at scrape time."""

    def __init__(self, totals: Callable[[], Mapping[str, float]]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals = self._totals()
        for key, (suffix, doc) in LEDGER_GAUGES.items():
            yield GaugeMetricFamily(f"{NS}_ledger_{suffix}", doc, value=float(totals.get(key, 0)))

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()
