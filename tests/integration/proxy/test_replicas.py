"""Two proxies on one Redis (a server, and a cluster) share what replicas must share: exact entries, admin
clears, the savings ledger (totals add up), rate limits, and the semantic feedback map (a hit served by one
can be given feedback on the other)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.monitoring.helpers import chat, metrics_when, wait_for
from tests.integration.semantic.conftest import wait_stored
from tests.support.proxy import ProxyServer
from tests.support.redis_cluster import LocalCluster
from tests.support.servers import RedisServer, ServerThread

pytestmark = pytest.mark.parametrize("backend", ["redis", "redis-cluster"])


def replicas(start_proxy: Any, store: RedisServer | LocalCluster | None, tmp_path: Path,
             **overrides: Any) -> tuple[Any, Any]:
    """Two proxies on ``store``, each with its own DATA_DIR, as two machines would be."""
    assert store is not None
    return tuple(start_proxy(redis_url=store.url, admin_api_key="adm", data_dir=str(tmp_path / name),
                             log_path=str(tmp_path / f"{name}.log"), **overrides) for name in "ab")  # type: ignore[return-value]


def wait_for_stores(proxy: ProxyServer) -> None:
    deadline = time.monotonic() + 5
    while len(proxy.parts.jobs) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_entries_clears_and_the_ledger_are_shared(start_proxy: Any, redis_store: Any, backend: str,
                                                  tmp_path: Path) -> None:
    a, b = replicas(start_proxy, redis_store, tmp_path)
    assert chat(a).headers["x-cache"] == "MISS"
    wait_for_stores(a)
    for _ in range(3):
        assert chat(b).headers["x-cache"] == "HIT"  # A's answer
    for proxy in (a, b):
        body = metrics_when(proxy, 4)
        assert body["cache_performance"]["total_requests"] == 4  # both see both replicas' requests
        assert body["cache_performance"]["exact_hits"] == 3
        assert body["ledger"]["backend"] == "redis"
    cleared = httpx.post(a.url + "/admin/cache/clear", headers={"x-api-key": "adm"}, timeout=10)
    assert cleared.json()["removed"]["exact"] == 1
    assert chat(b).headers["x-cache"] == "MISS"  # cleared on A, gone for B


def test_rate_limits_are_one_budget(start_proxy: Any, redis_store: Any, backend: str, tmp_path: Path) -> None:
    a, b = replicas(start_proxy, redis_store, tmp_path, rate_limit_per_minute=3)
    statuses = [chat_status(proxy, n) for n, proxy in enumerate((a, b, a, b))]
    assert statuses == [200, 200, 200, 429]


def chat_status(proxy: ProxyServer, n: int) -> int:
    response = httpx.post(proxy.base_url + "/chat/completions", timeout=10,
                          headers={"authorization": "Bearer sk-test-shared-budget"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{n}"}]})
    return response.status_code


def test_feedback_reaches_the_replica_that_did_not_serve_the_hit(start_proxy: Any, redis_store: Any, backend: str,
                                                                  embedding_service: ServerThread,
                                                                  tmp_path: Path) -> None:
    semantic = {"semantic_mode": "serve", "embedding_url": embedding_service.url, "embedding_timeout": 5.0,
                "semantic_verifier": "off", "semantic_threshold": 0.9}  # about feedback: the guards alone decide
    a, b = replicas(start_proxy, redis_store, tmp_path, **semantic)
    system = {"role": "system", "content": "Answer briefly."}
    a.client().chat.completions.create(model="gpt-4o-mini", messages=[
        system, {"role": "user", "content": "What is the capital of France?"}])
    wait_stored(a, 1)
    hit = a.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[
        system, {"role": "user", "content": "Which city is the capital of France?"}])
    assert hit.headers["x-cache-tier"] == "semantic"
    wait_for_stores(a)  # the hit is remembered in Redis off the request path
    feedback_headers = {"x-api-key": "adm", "x-feedback-api-key": "sk-test-alice"}  # the tenant that was answered
    verdict = httpx.post(b.url + "/admin/cache/feedback", headers=feedback_headers, timeout=10,
                         json={"request_id": hit.headers["x-request-id"], "verdict": "wrong"})
    assert verdict.status_code == 200, verdict.text  # B knows the hit A served
    assert verdict.json()["point_id"] == hit.headers["x-cache-key"].rpartition(":")[2]
    assert verdict.json()["blocked"] is True
    # each replica here has its own embedded vector store (replicas share one Qdrant server), so the
    # entry A served is not in B's store to evict; the request id and what answered it came through Redis
    again = httpx.post(b.url + "/admin/cache/feedback", headers=feedback_headers, timeout=10,
                       json={"request_id": hit.headers["x-request-id"], "verdict": "wrong"})
    assert again.status_code == 404  # acted on once, then forgotten everywhere


def test_each_replica_serves_hits_from_its_copy_until_another_changes_the_entry(
        start_proxy: Any, redis_store: Any, backend: str, tmp_path: Path) -> None:
    a, b = replicas(start_proxy, redis_store, tmp_path)
    copy = b.parts.exact.levels[0]
    assert copy.name == "redis-local"
    assert wait_for(lambda: b.parts.exact.levels[0].live, bool)  # type: ignore[attr-defined]
    assert chat(a).headers["x-cache"] == "MISS"
    wait_for_stores(a)
    for _ in range(3):
        assert chat(b).headers["x-cache"] == "HIT"  # from Redis once, then from B's copy
    assert copy.stats.hits >= 1
    held = copy.store._items  # type: ignore[attr-defined]
    assert len(held) == 1
    health = httpx.get(b.url + "/health", timeout=10).json()["services"]["redis_client_cache"]
    assert health["status"] == "up" and health["live"] is True
    cleared = httpx.post(a.url + "/admin/cache/clear", headers={"x-api-key": "adm"}, timeout=10)
    assert cleared.json()["removed"]["exact"] == 1
    wait_for(lambda: len(held), lambda n: n == 0)  # A's clear, announced by Redis, reached B's copy
    assert not held
    assert chat(b).headers["x-cache"] == "MISS"
