"""The shipped Prometheus config and Grafana dashboard use the names cachegate exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from proxy.monitoring.registry import LedgerCollector, Metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def exported_names() -> set[str]:
    metrics = Metrics()
    metrics.registry.register(LedgerCollector(dict))
    for metric, labels in ((metrics.request_duration, ("miss",)), (metrics.stream_ttft, ("miss",)),
                           (metrics.stream_tps, ("miss",)), (metrics.upstream_duration, ("true",)),
                           (metrics.lookup_duration, ("exact",)), (metrics.http_requests, ("/", "GET", "200")),
                           (metrics.cache_lookups, ("exact", "hit")), (metrics.tokens, ("m", "saved")),
                           (metrics.cost, ("m", "saved")), (metrics.errors, ("redis", "x")),
                           (metrics.cache_entries, ("exact",)), (metrics.cache_bytes, ("exact",)),
                           (metrics.streams, ("failed",))):
        metric.labels(*labels)
    text = generate_latest(metrics.registry).decode()
    return set(re.findall(r"^(cachegate_\w+)", text, re.M))


def test_the_dashboard_only_queries_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "cachegate.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"cachegate_\w+", expr)}
    assert len(exprs) >= 20
    assert used
    assert used <= exported_names(), used - exported_names()


def test_prometheus_scrapes_metrics() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
