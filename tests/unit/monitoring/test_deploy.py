"""The shipped Prometheus config and Grafana dashboard use the names cachegate exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from proxy.cache.stats import Level, LevelReport, LevelStats
from proxy.monitoring.registry import LedgerCollector, Metrics
from tests.unit.monitoring.support import make_observer

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def exported_names() -> set[str]:
    metrics = Metrics()
    metrics.registry.register(LedgerCollector(dict))
    make_observer(metrics=metrics)  # adds cachegate_active_streams
    for counter in metrics.counters:
        counter.inc(tuple("x" for _ in counter.labelnames))
    for histogram in metrics.histograms:
        histogram.observe(tuple("x" for _ in histogram.labelnames), 1.0)
    metrics.levels = [Level("memory", LevelReport(entries=1, bytes=1, bound=1), LevelStats())]
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
