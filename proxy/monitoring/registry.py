"""The Prometheus metrics of one app, in their own ``CollectorRegistry`` (no module-level state).

The values live in plain dicts (:class:`CounterVec`, :class:`HistogramVec`) updated by the observer's
batch fold on the event loop, and are turned into metric families only when scraped: no locks and no
per-sample Python loops on the way in (a histogram observation is one ``bisect``). Counters here are
this process's since it started (Prometheus handles restarts and sums replicas); the all-time,
all-replica totals of the savings ledger are exported beside them as ``cachegate_ledger_*`` gauges.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from proxy.cache.stats import REASONS, Level

NS = "cachegate"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0)
LOOKUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500, 1000, 5000, 20000, 100000)

Labels = tuple[str, ...]


class CounterVec:
    __slots__ = ("doc", "labelnames", "name", "values")

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = ()) -> None:
        self.name, self.doc, self.labelnames = name, doc, list(labelnames)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def get(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0.0)

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for labels, value in sorted(self.values.items()):
            family.add_metric(list(labels), value)
        return family


class HistogramVec:
    __slots__ = ("bounds", "data", "doc", "labelnames", "name")

    def __init__(self, name: str, doc: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.doc, self.labelnames = name, doc, list(labelnames)
        self.bounds = [float(bound) for bound in buckets]
        #: labels → [count in each bucket (not cumulative)..., count above the last bound, sum]
        self.data: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        data = self.data.get(labels)
        if data is None:
            data = self.data[labels] = [0.0] * (len(self.bounds) + 2)
        data[bisect_left(self.bounds, value)] += 1
        data[-1] += value

    def observe_many(self, labels: Labels, values: list[float]) -> None:
        if not values:
            return
        data = self.data.get(labels)
        if data is None:
            data = self.data[labels] = [0.0] * (len(self.bounds) + 2)
        bounds = self.bounds
        for value in values:
            data[bisect_left(bounds, value)] += 1
        data[-1] += sum(values)

    def count(self, labels: Labels = ()) -> int:
        data = self.data.get(labels)
        return int(sum(data[:-1])) if data else 0

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labelnames)
        edges = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]
        for labels, data in sorted(self.data.items()):
            running, buckets = 0.0, []
            for edge, count in zip(edges, data[:-1], strict=True):
                running += count
                buckets.append((edge, running))
            family.add_metric(list(labels), buckets, sum_value=data[-1])
        return family


class Metrics(Collector):
    """Every metric cachegate exports. ``before_collect`` runs first at each scrape (the observer's fold)."""

    def __init__(self, *, started_at: float | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.started_at = started_at or time.time()
        self._monotonic_start = time.monotonic()
        self.before_collect: Callable[[], None] | None = None
        #: more gauges read at scrape time: name → (help, read)
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.http_requests = CounterVec(f"{NS}_http_requests", "HTTP requests by route, method and status.",
                                        ["route", "method", "status"])
        self.cache_lookups = CounterVec(f"{NS}_cache_lookups",
                                        "Cache lookups by tier and outcome (hit, miss, bypass, error, shadow_hit).",
                                        ["tier", "outcome"])
        self.request_duration = HistogramVec(f"{NS}_request_duration_seconds",
                                             "Time to the last byte of a response, by cache outcome.",
                                             ["cache"], LATENCY_BUCKETS)
        self.upstream_duration = HistogramVec(f"{NS}_upstream_duration_seconds",
                                              "Time the upstream took to answer a chat request completely.",
                                              ["stream"], LATENCY_BUCKETS)
        self.lookup_duration = HistogramVec(f"{NS}_cache_lookup_duration_seconds", "Cache lookup time by tier.",
                                            ["tier"], LOOKUP_BUCKETS)
        self.embedding_duration = HistogramVec(f"{NS}_embedding_duration_seconds",
                                               "Time to embed a prompt for the semantic tier.", [], LOOKUP_BUCKETS)
        self.stream_ttft = HistogramVec(f"{NS}_stream_ttft_seconds",
                                        "Streams: time to the first byte, by cache outcome.", ["cache"],
                                        LATENCY_BUCKETS)
        self.stream_tps = HistogramVec(f"{NS}_stream_tokens_per_second",
                                       "Streams: completion tokens per second after the first byte, by cache outcome.",
                                       ["cache"], TPS_BUCKETS)
        self.streams = CounterVec(f"{NS}_streams", "Finished streamed responses, by result (completed, failed).",
                                  ["result"])
        self.tokens = CounterVec(f"{NS}_tokens", "Tokens by model and kind (prompt, completion, saved, "
                                 "provider_cached).", ["model", "kind"])
        self.cost = CounterVec(f"{NS}_cost_usd", "US dollars by model and kind (spent, saved).", ["model", "kind"])
        self.errors = CounterVec(f"{NS}_errors", "Errors by component and type.", ["component", "type"])
        self.dropped = CounterVec(f"{NS}_monitoring_dropped", "Usage rows or log lines dropped because a writer "
                                  "fell behind.", ["sink"])
        #: every cache level (memory, disk, Redis, semantic) as last read: live counters, gauges of the last read
        self.levels: list[Level] = []
        self.counters: list[CounterVec] = [self.http_requests, self.cache_lookups, self.streams, self.tokens,
                                           self.cost, self.errors, self.dropped]
        self.histograms: list[HistogramVec] = [self.request_duration, self.upstream_duration, self.lookup_duration,
                                               self.embedding_duration, self.stream_ttft, self.stream_tps]
        self.registry.register(self)
        ProcessCollector(namespace=NS, registry=self.registry)

    def uptime(self) -> float:
        return time.monotonic() - self._monotonic_start

    def collect(self) -> Iterator[Metric]:
        if self.before_collect is not None:
            self.before_collect()
        for counter in self.counters:
            yield counter.family()
        for histogram in self.histograms:
            yield histogram.family()
        yield from level_families(self.levels)
        yield GaugeMetricFamily(f"{NS}_uptime_seconds", "Seconds since this process started serving.",
                                value=self.uptime())
        yield GaugeMetricFamily(f"{NS}_start_time_seconds", "Unix time this process started.", value=self.started_at)
        for name, (doc, read) in self.gauges.items():
            yield GaugeMetricFamily(name, doc, value=read())

#: (name, help, read) of each per-level gauge and counter; ``tier`` is the level: memory, disk, redis, semantic
_LEVEL_GAUGES: tuple[tuple[str, str, Callable[[Level], float | None]], ...] = (
    ("cache_entries", "Entries held, by cache level.", lambda level: level.report.entries),
    ("cache_bytes", "Bytes held, by cache level (Redis: the server's used_memory).", lambda level: level.report.bytes),
    ("cache_bound_bytes", "Bound of the level in bytes (Redis: maxmemory); absent when unbounded.",
     lambda level: level.report.bound),
    ("cache_compression_ratio", "Answer bytes before compression per byte stored, over this process's writes.",
     lambda level: level.stats.compression_ratio),
)
_LEVEL_COUNTERS: tuple[tuple[str, str, Callable[[Level], float]], ...] = (
    ("cache_hits", "Reads a level answered.", lambda level: level.stats.hits),
    ("cache_misses", "Reads a level did not have.", lambda level: level.stats.misses),
    ("cache_sets", "Entries a level kept, written or promoted into it.", lambda level: level.stats.sets),
    ("cache_deletes", "Entries deleted from a level (admin deletes and clears).", lambda level: level.stats.deletes),
    ("cache_expired_reads", "Reads that found an entry past its TTL (a miss, or served stale when asked).",
     lambda level: level.stats.expired_reads),
    ("cache_skipped_reads", "Misses a level answered without reading its store: its key filter (disk) knew the "
     "key was not there.", lambda level: level.stats.skipped_reads),
)


def level_families(levels: Sequence[Level]) -> Iterator[Metric]:
    """``cachegate_cache_*{tier=<level>}``: gauges, counters, and evictions by reason (size, expiry)."""
    for name, doc, read in _LEVEL_GAUGES:
        family = GaugeMetricFamily(f"{NS}_{name}", doc, labels=["tier"])
        for level in levels:
            value = read(level)
            if value is not None:
                family.add_metric([level.name], float(value))
        yield family
    for name, doc, count in _LEVEL_COUNTERS:
        counter = CounterMetricFamily(f"{NS}_{name}", doc, labels=["tier"])
        for level in levels:
            counter.add_metric([level.name], float(count(level)))
        yield counter
    evictions = CounterMetricFamily(f"{NS}_cache_evictions", "Entries a level dropped, by reason: size (its bound) "
                                    "or expiry (its life ended).", labels=["tier", "reason"])
    for level in levels:
        for reason in REASONS:
            evictions.add_metric([level.name, reason], float(level.stats.evictions.get(reason, 0)))
    yield evictions


#: ledger key (scope "global") → help of its ``cachegate_ledger_<key>`` gauge
LEDGER_GAUGES = {
    "requests": "All-time chat requests (all replicas, survives restarts).",
    "exact_hits": "All-time exact-tier hits.",
    "semantic_hits": "All-time semantic-tier hits.",
    "misses": "All-time misses.",
    "bypassed": "All-time requests that bypassed the cache.",
    "tokens_saved": "All-time tokens served from the cache instead of the upstream.",
    "tokens_used": "All-time tokens the upstream charged for.",
    "provider_cached_tokens": "All-time prompt tokens the provider served from its own prompt cache.",
    "cost_saved_usd": "All-time US dollars saved (both cache tiers and provider caching).",
    "cost_spent_usd": "All-time US dollars spent upstream.",
}


class LedgerCollector(Collector):
    """Exports the ledger's all-time totals (read from ``totals()``) as gauges at scrape time."""

    def __init__(self, totals: Callable[[], Mapping[str, float]]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        totals = self._totals()
        for key, doc in LEDGER_GAUGES.items():
            yield GaugeMetricFamily(f"{NS}_ledger_{key}", doc, value=float(totals.get(key, 0)))


class LabelledCollector(Collector):
    """One gauge or counter family with one label, read at scrape time: ``read()`` maps label value → value
    (fail-open states as ``cachegate_dependency_up{component}``, the semantic feedback verdicts...)."""

    def __init__(self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, float]], *,
                 counter: bool = False) -> None:
        self.name, self.doc, self.label, self.read, self.counter = name, doc, label, read, counter

    def collect(self) -> Iterator[Metric]:
        kind = CounterMetricFamily if self.counter else GaugeMetricFamily
        family = kind(f"{NS}_{self.name}", self.doc, labels=[self.label])
        for value, number in sorted(self.read().items()):
            family.add_metric([value], float(number))
        yield family
