"""The probe's Prometheus metrics, on the app's one registry (:class:`~proxy.monitoring.registry.Metrics`).

Per model, from its latest verdict (every replica reads them from the store, so each exports the same):
``cachegate_probe_cache_ratio`` (cached share of the prompt on repeats), ``cachegate_probe_min_prefix_tokens``,
``cachegate_probe_ttl_seconds{bound="lower|upper"}``, ``cachegate_probe_speedup``,
``cachegate_probe_last_success_timestamp_seconds`` and ``cachegate_probe_verdict{verdict}`` (1 for the
model's verdict, 0 for the others). Figures that are unknown are left out, never exported as 0.
This process's probe requests, tokens and errors are counters: ``cachegate_probe_requests_total{model,status}``,
``cachegate_probe_tokens_total{model,kind}`` (prompt, cached, completion), ``cachegate_probe_errors_total
{model,type}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.monitoring.registry import NS, CounterVec, Metrics
from proxy.probe.records import ResultRow, VerdictRow

VERDICTS = ("caches", "no_caching", "routing_limited", "needs_hint", "unknown")
P = f"{NS}_probe"


def _error_type(row: ResultRow) -> str | None:
    if row.status == 0:
        return "transport"
    if row.status != 200:
        return f"http_{row.status // 100}xx"
    return "answer" if row.error else None


class ProbeMetrics(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.requests = CounterVec(f"{P}_requests", "Probe requests sent by this process, by model and HTTP status "
                                   "(0: no answer).", ["model", "status"])
        self.tokens = CounterVec(f"{P}_tokens", "Tokens of this process's probe requests, by model and kind "
                                 "(prompt, cached, completion; estimated: charged for answers without usage).",
                                 ["model", "kind"])
        self.errors = CounterVec(f"{P}_errors", "Probe requests that failed, by model and type (transport, "
                                 "http_4xx, http_5xx, answer).", ["model", "type"])
        self.latest: dict[str, VerdictRow] = {}
        self.ttl: dict[str, list[float | None]] = {}
        self.last_success: dict[str, float] = {}
        metrics.registry.register(self)

    def count(self, rows: Iterable[ResultRow]) -> None:
        for row in rows:
            self.requests.inc((row.model, str(row.status)))
            for kind, value in (("prompt", row.prompt_tokens), ("cached", row.cached_tokens),
                                ("completion", row.completion_tokens), ("estimated", row.estimated_tokens)):
                if value:
                    self.tokens.inc((row.model, kind), value)
            error = _error_type(row)
            if error is not None:
                self.errors.inc((row.model, error))

    def note(self, verdict: VerdictRow) -> None:
        """A verdict just written (the next refresh from the store says the same)."""
        self.latest[verdict.model] = verdict
        if verdict.error is None:
            self.last_success[verdict.model] = verdict.ts

    def show(self, latest: Iterable[VerdictRow], *, ttl: dict[str, Any], last_success: dict[str, float]) -> None:
        """Replace the per-model figures with these (the latest verdicts, TTL brackets, last successes)."""
        self.latest = {row.model: row for row in latest}
        self.ttl = {model: figures["ttl_seconds"] for model, figures in ttl.items() if figures.get("ttl_seconds")}
        self.last_success = dict(last_success)

    def collect(self) -> Iterator[Metric]:
        yield from (self.requests.family(), self.tokens.family(), self.errors.family())
        gauges = {
            "cache_ratio": ("Cached share of the prompt on the latest run's repeats.", lambda v: v.cache_rate),
            "min_prefix_tokens": ("Smallest prompt the model caches (tokens).", lambda v: v.min_prefix_tokens),
            "speedup": ("Time to first token, fresh over cached.", lambda v: v.speedup),
        }
        for name, (doc, read) in gauges.items():
            family = GaugeMetricFamily(f"{P}_{name}", doc, labels=["model"])
            for model, row in sorted(self.latest.items()):
                value = read(row)
                if value is not None:
                    family.add_metric([model], float(value))
            yield family
        ttl = GaugeMetricFamily(f"{P}_ttl_seconds", "Bracket of how long an idle cached prefix lives.",
                                labels=["model", "bound"])
        for model, bracket in sorted(self.ttl.items()):
            for bound, value in zip(("lower", "upper"), bracket, strict=False):
                if value is not None:
                    ttl.add_metric([model, bound], float(value))
        yield ttl
        last = GaugeMetricFamily(f"{P}_last_success_timestamp_seconds", "When the model's last run without an "
                                 "error ended.", labels=["model"])
        for model, ts in sorted(self.last_success.items()):
            last.add_metric([model], ts)
        yield last
        verdict = GaugeMetricFamily(f"{P}_verdict", "The model's latest verdict (1) among all verdicts.",
                                    labels=["model", "verdict"])
        for model, row in sorted(self.latest.items()):
            for name in VERDICTS:
                verdict.add_metric([model, name], 1.0 if row.verdict == name else 0.0)
        yield verdict
