"""Admin cache routes on every exact-tier backend (memory, Redis, Redis Cluster): clear by tier, model and
namespace (touching only cachegate's own keys), delete one entry, warm then hit, stats."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from qdrant_client import AsyncQdrantClient

from proxy.semantic.qdrant import QdrantBackend
from tests.support.proxy import ProxyServer
from tests.support.redis_cluster import LocalCluster
from tests.support.servers import RedisServer, ServerThread, SimulatorServer, free_port

FOREIGN = {"otherapp:session:42": b"keep me", "cachegate-not:exact:x:y:z:w": b"not ours either",
           "exact:aaaa:-:bbbb:cccc": b"no prefix"}


@pytest.fixture
def admin_proxy(redis_store: RedisServer | LocalCluster | None, start_proxy: Any) -> ProxyServer:
    if redis_store is not None:
        with redis_store.client() as client:
            for key, value in FOREIGN.items():
                client.set(key, value)
        return start_proxy(redis_url=redis_store.url, admin_api_key="adm")
    return start_proxy(admin_api_key="adm")


def admin(proxy: ProxyServer, method: str, path: str, headers: dict[str, str] | None = None,
          **kwargs: Any) -> httpx.Response:
    return httpx.request(method, proxy.url + path, headers={"x-api-key": "adm", **(headers or {})}, timeout=30,
                         **kwargs)


def chat(proxy: ProxyServer, content: str, *, model: str = "gpt-4o-mini", namespace: str | None = None,
         api_key: str = "sk-test-alice") -> httpx.Response:
    headers = {"authorization": f"Bearer {api_key}"}
    if namespace is not None:
        headers["x-cache-namespace"] = namespace
    response = httpx.post(proxy.base_url + "/chat/completions", headers=headers, timeout=10,
                          json={"model": model, "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200, response.text
    return response


def fill(proxy: ProxyServer) -> None:
    """Five entries: 3 gpt-4o-mini (2 default namespace, 1 in 'docs'), 2 gpt-4o (1 each)."""
    for content, model, namespace in [("a", "gpt-4o-mini", None), ("b", "gpt-4o-mini", None),
                                      ("c", "gpt-4o-mini", "docs"), ("d", "gpt-4o", None), ("e", "gpt-4o", "docs")]:
        assert chat(proxy, content, model=model, namespace=namespace).headers["x-cache"] == "MISS"
    proxy_wait_for_stores(proxy)


def proxy_wait_for_stores(proxy: ProxyServer) -> None:
    # answers are stored off the request path: a second ask turns into a hit once they are
    deadline = time.monotonic() + 5
    while len(proxy.parts.jobs) and time.monotonic() < deadline:
        time.sleep(0.01)


def cached(proxy: ProxyServer) -> dict[str, bool]:
    """Which of the five are still cached (asking again re-fills the misses, so call once per check)."""
    out = {}
    for content, model, namespace in [("a", "gpt-4o-mini", None), ("b", "gpt-4o-mini", None),
                                      ("c", "gpt-4o-mini", "docs"), ("d", "gpt-4o", None), ("e", "gpt-4o", "docs")]:
        out[content] = chat(proxy, content, model=model, namespace=namespace).headers["x-cache"] == "HIT"
    return out


def foreign_keys_intact(redis_store: RedisServer | LocalCluster | None) -> None:
    if redis_store is None:
        return
    with redis_store.client() as client:
        for key, value in FOREIGN.items():
            assert client.get(key) == value


@pytest.mark.parametrize(("query", "removed", "left"), [
    ({}, 5, set()),
    ({"tier": "exact"}, 5, set()),
    ({"model": "gpt-4o"}, 2, {"a", "b", "c"}),
    ({"namespace": "docs"}, 2, {"a", "b", "d"}),
    ({"namespace": ""}, 3, {"c", "e"}),
    ({"model": "gpt-4o-mini", "namespace": "docs"}, 1, {"a", "b", "d", "e"}),
    ({"model": "no-such-model"}, 0, {"a", "b", "c", "d", "e"}),
], ids=["all", "exact", "model", "namespace", "default-namespace", "model+namespace", "nothing"])
def test_clear_removes_exactly_the_scope(admin_proxy: ProxyServer, redis_store: RedisServer | LocalCluster | None,
                                         query: dict[str, str], removed: int, left: set[str]) -> None:
    fill(admin_proxy)
    response = admin(admin_proxy, "POST", "/admin/cache/clear", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["removed"]["exact"] == removed
    assert body["total"] == removed
    if query.get("tier") != "exact":
        assert body["skipped"] == {"semantic": "the semantic tier is off"}
    assert {name for name, hit in cached(admin_proxy).items() if hit} == left
    foreign_keys_intact(redis_store)


def test_clear_takes_a_json_body_too(admin_proxy: ProxyServer) -> None:
    fill(admin_proxy)
    response = admin(admin_proxy, "POST", "/admin/cache/clear", json={"tier": "exact", "model": "gpt-4o"})
    assert response.json()["removed"] == {"exact": 2}


@pytest.mark.parametrize(("params", "code"), [({"tier": "disk"}, "invalid_value"),
                                              ({"tier": "semantic"}, "tier_disabled")])
def test_clear_refuses_what_it_cannot_do(admin_proxy: ProxyServer, params: dict[str, str], code: str) -> None:
    response = admin(admin_proxy, "POST", "/admin/cache/clear", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_clear_by_a_key_pattern(admin_proxy: ProxyServer, redis_store: RedisServer | LocalCluster | None) -> None:
    fill(admin_proxy)
    key = chat(admin_proxy, "d", model="gpt-4o").headers["x-cache-key"]  # <prefix>exact:<owner>:<ns>:<model>:<d>
    prefix, _owner, _namespace, model, _digest = key.rsplit(":", 4)
    one = admin(admin_proxy, "POST", "/admin/cache/clear", params={"pattern": key}).json()
    assert one["removed"] == {"exact": 1}
    assert one["skipped"] == {"semantic": "the semantic tier is off"}
    by_model = admin(admin_proxy, "POST", "/admin/cache/clear", json={"pattern": f"{prefix}:*:*:{model}:*"}).json()
    assert by_model["removed"] == {"exact": 1} and by_model["scope"]["pattern"] == f"{prefix}:*:*:{model}:*"
    assert {name for name, hit in cached(admin_proxy).items() if hit} == {"a", "b", "c"}
    foreign_keys_intact(redis_store)


def test_clear_by_age_reaches_every_level(admin_proxy: ProxyServer) -> None:
    fill(admin_proxy)
    none = admin(admin_proxy, "POST", "/admin/cache/clear", params={"older_than": "3600"}).json()
    assert none["removed"] == {"exact": 0}
    everything = admin(admin_proxy, "POST", "/admin/cache/clear", json={"older_than": 0, "tier": "exact"}).json()
    assert everything["removed"] == {"exact": 5} and everything["scope"]["older_than"] == 0
    levels = admin(admin_proxy, "GET", "/admin/stats").json()["cache"]["exact"]["levels"]
    assert {name: level["entries"] for name, level in levels.items()} == dict.fromkeys(levels, 0)  # memory and disk
    assert not any(cached(admin_proxy).values())


@pytest.mark.parametrize(("params", "param", "code"), [
    ({"pattern": "*"}, "pattern", "invalid_value"),
    ({"pattern": "cachegate:exact:[a-f]*"}, "pattern", "invalid_value"),
    ({"pattern": "cachegate:exact:*", "model": "gpt-4o"}, "pattern", "invalid_combination"),
    ({"older_than": "-5"}, "older_than", "invalid_value"),
    ({"older_than": "soon"}, "older_than", "invalid_value"),
    ({"older_than": "1", "tier": "semantic"}, "older_than", "invalid_combination"),
])
def test_a_malformed_narrowing_is_a_400_and_clears_nothing(admin_proxy: ProxyServer, params: dict[str, str],
                                                           param: str, code: str) -> None:
    fill(admin_proxy)
    response = admin(admin_proxy, "POST", "/admin/cache/clear", params=params)
    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (param, code)
    assert all(cached(admin_proxy).values())


def test_delete_one_entry_by_its_x_cache_key(admin_proxy: ProxyServer, redis_store: RedisServer | LocalCluster | None,
                                             sim: SimulatorServer) -> None:
    chat(admin_proxy, "one")
    chat(admin_proxy, "two")
    proxy_wait_for_stores(admin_proxy)
    hit = chat(admin_proxy, "one")
    key = hit.headers["x-cache-key"]
    assert key.startswith("cachegate:exact:")
    deleted = admin(admin_proxy, "DELETE", f"/admin/cache/entries/{key}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": 1, "key": key}
    assert admin(admin_proxy, "DELETE", f"/admin/cache/entries/{key}").status_code == 404
    assert chat(admin_proxy, "one").headers["x-cache"] == "MISS"
    assert chat(admin_proxy, "two").headers["x-cache"] == "HIT"
    foreign = admin(admin_proxy, "DELETE", "/admin/cache/entries/otherapp:session:42")
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "invalid_key"
    foreign_keys_intact(redis_store)


def test_warm_then_hit(admin_proxy: ProxyServer, sim: SimulatorServer) -> None:
    requests: list[dict[str, Any]] = [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"warm {i}"}]} for i in range(5)]
    requests.append({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "warm 0"}], "stream": True})
    requests.append({"model": "gpt-4o-mini"})  # no messages: refused, the others go on
    response = admin(admin_proxy, "POST", "/admin/cache/warm?concurrency=2",
                     headers={"x-api-key": "adm", "x-warm-api-key": "sk-test-alice"}, json=requests)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 7 and body["failed"] == 1 and body["concurrency"] == 2
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert all(r["status"] == 200 and r["cached"] and r["key"].startswith("cachegate:exact:") for r in results[:6])
    assert results[0]["key"] == results[5]["key"]  # stream or not, one entry
    assert results[6]["status"] == 400 and not results[6]["cached"] and "messages" in results[6]["error"]
    assert sim.state.chat_calls == 5
    for i in range(5):
        hit = chat(admin_proxy, f"warm {i}")  # the same tenant (sk-test-alice) now hits
        assert hit.headers["x-cache"] == "HIT"
        assert hit.headers["x-cache-key"] == results[i]["key"]
    assert chat(admin_proxy, "warm 0", api_key="sk-test-bob").headers["x-cache"] == "MISS"  # another tenant
    assert sim.state.chat_calls == 6


def test_warm_from_a_jsonl_upload_into_a_namespace(admin_proxy: ProxyServer, sim: SimulatorServer) -> None:
    lines = b"\n".join(orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"line {i}"}]})
                       for i in range(3))
    response = admin(admin_proxy, "POST", "/admin/cache/warm", content=lines,
                     headers={"x-api-key": "adm", "content-type": "application/x-ndjson",
                              "x-warm-api-key": "sk-test-alice", "x-cache-namespace": "docs"})
    assert response.status_code == 200, response.text
    assert response.json()["cached"] == 3
    assert chat(admin_proxy, "line 1", model="gpt-4o", namespace="docs").headers["x-cache"] == "HIT"
    assert chat(admin_proxy, "line 2", model="gpt-4o").headers["x-cache"] == "MISS"  # default namespace
    again = admin(admin_proxy, "POST", "/admin/cache/warm", content=lines,
                  headers={"x-api-key": "adm", "content-type": "application/x-ndjson",
                           "x-warm-api-key": "sk-test-alice", "x-cache-namespace": "docs"}).json()
    assert again["already_cached"] == 3 and again["cached"] == 3


def test_warm_reports_failures_per_request(start_proxy: Any) -> None:
    proxy = start_proxy(upstream_base_url=f"http://127.0.0.1:{free_port()}/v1", admin_api_key="adm")
    response = admin(proxy, "POST", "/admin/cache/warm", headers={"x-sim-status": "500"},
                     json=[{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, "not an object"])
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["status"] == 502 and not first["cached"] and "could not be reached" in first["error"]
    assert second == {"index": 1, "status": 400, "cached": False, "key": None,
                      "error": "Each request must be a JSON object."}
    bad = admin(proxy, "POST", "/admin/cache/warm", content=b"not json at all")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"


def test_stats_has_cache_services_and_metrics(admin_proxy: ProxyServer, backend: str) -> None:
    fill(admin_proxy)
    stats = admin(admin_proxy, "GET", "/admin/stats")
    assert stats.status_code == 200
    body = stats.json()
    assert body["cache"]["exact"]["backend"] == ("memory+disk" if backend == "memory" else "redis-local+redis")
    # cache entries only: not the FOREIGN keys, the ledger or the tenant secret in the same Redis
    assert body["cache"]["exact"]["entries"] == 5
    levels = body["cache"]["exact"]["levels"]
    assert set(levels) == ({"memory", "disk"} if backend == "memory" else {"redis-local", "redis"})
    for name, level in levels.items():
        # the local copy of Redis keeps what it read, never a write: nothing read yet, nothing kept, no set
        assert (level["entries"], level["sets"]) == ((0, 0) if name == "redis-local" else (5, 5))
        assert set(level["evictions"]) == {"size", "expiry"}
    if backend != "memory":
        assert levels["redis-local"]["tracking"] == "live"
    assert body["cache"]["semantic"]["enabled"] is False
    if backend != "memory":
        assert body["services"]["redis"]["status"] == "up"
    else:
        assert body["services"]["exact_cache"]["status"] == "embedded"
    assert body["status"] == "healthy"
    assert body["uptime_seconds"] >= 0
    metrics = httpx.get(admin_proxy.url + "/metrics").json()
    assert body["metrics"]["cache_performance"] == metrics["cache_performance"]


def test_clear_reaches_the_semantic_tier(start_proxy: Any, embedding_service: ServerThread) -> None:
    # the real tier: the embedding service, the Qdrant server backend on qdrant-client's local mode
    store = QdrantBackend(client=AsyncQdrantClient(location=":memory:"), timeout=5.0)
    proxy = start_proxy(admin_api_key="adm", semantic_mode="serve", embedding_url=embedding_service.url,
                        embedding_timeout=10.0, app_kwargs={"semantic_backend": store})
    fill(proxy)
    semantic = proxy.parts.semantic
    assert semantic is not None and semantic.stats["stored"] == 5
    assert admin(proxy, "GET", "/admin/stats").json()["cache"]["semantic"]["entries"] == 5
    # the tier is one cache level in /metrics and Prometheus too, with its own counters (refreshed by a job)
    deadline = time.monotonic() + 10
    while (level := httpx.get(proxy.url + "/metrics").json()["cache"]["levels"].get("semantic", {})).get("sets") != 5 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (level["entries"], level["sets"], level["misses"], level["hits"]) == (5, 5, 5, 0)
    prometheus = httpx.get(proxy.url + "/metrics/prometheus").text
    assert 'cachegate_cache_sets_total{tier="semantic"} 5.0' in prometheus
    assert 'cachegate_cache_entries{tier="semantic"} 5.0' in prometheus
    both = admin(proxy, "POST", "/admin/cache/clear", params={"model": "gpt-4o", "namespace": "docs"}).json()
    assert both["removed"] == {"exact": 1, "semantic": 1} and both["total"] == 2 and both["skipped"] == {}
    only = admin(proxy, "POST", "/admin/cache/clear", params={"tier": "semantic"}).json()
    assert only["removed"] == {"semantic": 4}
    assert admin(proxy, "GET", "/admin/stats").json()["cache"]["semantic"]["entries"] == 0
    assert {name for name, hit in cached(proxy).items() if hit} == {"a", "b", "c", "d"}  # the exact tier kept these


def test_a_semantic_store_that_is_down_makes_clear_a_503(start_proxy: Any, embedding_service: ServerThread) -> None:
    proxy = start_proxy(admin_api_key="adm", semantic_mode="serve", qdrant_url=f"http://127.0.0.1:{free_port()}",
                        qdrant_timeout=0.5, embedding_url=embedding_service.url)
    down = admin(proxy, "POST", "/admin/cache/clear", params={"tier": "semantic"})
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "dependency_unavailable"
    stats = admin(proxy, "GET", "/admin/stats").json()
    assert stats["cache"]["semantic"]["entries"] is None and stats["cache"]["semantic"]["error"]
