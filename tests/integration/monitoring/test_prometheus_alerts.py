"""A real Prometheus server (Debian's package) scrapes a live cachegate with deploy/prometheus/alerts.yml
loaded, and sees an alert go pending: Redis is unreachable, so the exact tier fails open and
cachegate_dependency_up{component="redis"} drops to 0."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.prometheus import RULES, PrometheusServer


def test_prometheus_sees_cachegate_alert_go_pending(start_proxy: Any) -> None:
    proxy = start_proxy(redis_url="redis://127.0.0.1:1", redis_timeout=0.2)
    answer = httpx.post(proxy.base_url + "/chat/completions", timeout=10,
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
    assert answer.status_code == 200
    with PrometheusServer([proxy.url.removeprefix("http://")], rule_files=[RULES]) as prometheus:
        deadline = time.monotonic() + 60
        alerts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            alerts = prometheus.api("alerts")["alerts"]
            if any(alert["labels"]["alertname"] == "CachegateDependencyDown" for alert in alerts):
                break
            time.sleep(0.5)
        [target] = prometheus.api("targets")["activeTargets"]
        assert target["health"] == "up", target
        down = [alert for alert in alerts if alert["labels"]["alertname"] == "CachegateDependencyDown"]
        assert [(alert["labels"]["component"], alert["state"]) for alert in down] == [("redis", "pending")]
        value = prometheus.api("query", query='cachegate_dependency_up{component="redis"}')["result"]
        assert [sample["value"][1] for sample in value] == ["0"]
