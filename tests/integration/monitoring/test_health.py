"""``/health`` follows Redis; ``/health/live`` only the process; ``/health/detailed`` the error rate."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.integration.monitoring.helpers import chat
from tests.support.servers import RedisServer, free_port


def test_health_turns_503_when_redis_stops_and_200_when_it_is_back(start_proxy: Any) -> None:
    with RedisServer() as redis_server:
        proxy = start_proxy(redis_url=redis_server.url, redis_timeout=0.25)
        healthy = httpx.get(proxy.url + "/health")
        assert healthy.status_code == 200
        assert healthy.json()["status"] == "healthy"
        assert healthy.json()["services"]["redis"]["status"] == "up"
        assert healthy.json()["services"]["redis"]["latency_ms"] >= 0
        redis_server.kill()
        down = httpx.get(proxy.url + "/health")
        assert down.status_code == 503
        assert down.json()["status"] == "unhealthy"
        assert down.json()["down"] == ["redis"]
        assert down.json()["services"]["redis"]["status"] == "down"
        assert httpx.get(proxy.url + "/health/live").status_code == 200
        assert chat(proxy).status_code == 200  # fails open meanwhile
        assert httpx.get(proxy.url + "/metrics").status_code == 200  # the ledger is stale, not broken
        redis_server.start()
        assert httpx.get(proxy.url + "/health").status_code == 200


def test_embedded_parts_report_embedded(start_proxy: Any) -> None:
    body = httpx.get(start_proxy().url + "/health").json()
    assert body["status"] == "healthy"
    assert body["services"]["exact_cache"] == {"status": "embedded", "backend": "memory+disk"}


def test_detailed_health_follows_the_error_rate(start_proxy: Any) -> None:
    proxy = start_proxy()
    for _ in range(19):
        assert httpx.get(proxy.base_url + "/models").status_code == 200
    assert httpx.get(proxy.base_url + "/models", headers={"x-sim-status": "500"}).status_code == 500
    detailed = httpx.get(proxy.url + "/health/detailed")
    body = detailed.json()
    assert (detailed.status_code, body["status"]) == (200, "degraded")  # exactly 5% errors
    assert (body["requests"], body["errors"], body["error_rate_percent"]) == (20, 1, 5.0)
    models = body["endpoints"]["/v1/models"]
    assert (models["requests"], models["error_rate_percent"]) == (20, 5.0)
    assert models["p50_ms"] > 0 and models["p99_ms"] >= models["p50_ms"]
    assert body["uptime_seconds"] > 0 and body["requests_per_second"] > 0
    assert body["services"]["exact_cache"]["status"] == "embedded"


def test_detailed_health_is_unhealthy_above_ten_percent(start_proxy: Any) -> None:
    proxy = start_proxy(upstream_base_url=f"http://127.0.0.1:{free_port()}/v1")
    assert httpx.get(proxy.base_url + "/models").status_code == 502
    detailed = httpx.get(proxy.url + "/health/detailed")
    assert (detailed.status_code, detailed.json()["status"]) == (503, "unhealthy")
    assert detailed.json()["error_rate_percent"] == 100.0
    healthy_again = httpx.get(proxy.url + "/health/detailed")  # the /health/detailed call itself was a 503
    assert healthy_again.json()["requests"] == 2


def test_debug_upstream_logs_exchanges_without_keys(start_proxy: Any, caplog: pytest.LogCaptureFixture) -> None:
    proxy = start_proxy(debug_upstream=True)
    with caplog.at_level(logging.INFO, logger="cachegate.upstream.debug"):
        chat(proxy, api_key="sk-test-very-secret-key-42")
    messages = [record.getMessage() for record in caplog.records if record.name == "cachegate.upstream.debug"]
    assert any(message.startswith("upstream request: POST") for message in messages)
    assert any(message.startswith("upstream response: POST") for message in messages)
    assert any("You said" in message for message in messages if message.startswith("upstream response body"))
    assert not any("very-secret" in message for message in messages)
