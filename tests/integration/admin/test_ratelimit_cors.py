"""Rate limiting of /v1/* (per key or address, shared through Redis) and CORS."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from tests.support.proxy import ProxyServer, admin_headers

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "limit me"}]}


def chat(proxy: ProxyServer, api_key: str = "sk-test-alice") -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", json=BODY, timeout=10,
                      headers={"authorization": f"Bearer {api_key}"})


def test_the_request_over_budget_gets_429_with_the_headers(start_proxy: Any) -> None:
    # keys count as callers of their own only once verified (CLIENT_API_KEYS): issue 10.11
    verified = tuple(hashlib.sha256(key.encode()).hexdigest() for key in ("sk-test-alice", "sk-test-bob"))
    proxy = start_proxy(rate_limit_per_minute=3, client_api_keys=verified)
    answers = [chat(proxy) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    for answer in answers:
        assert 1 <= int(answer.headers["x-ratelimit-reset"]) <= 60
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "3 requests per minute" in error["message"]
    assert chat(proxy, api_key="sk-test-bob").status_code == 200  # another caller, another budget
    assert httpx.get(proxy.base_url + "/models", headers={"authorization": "Bearer sk-test-alice"}).status_code == 429
    for path in ("/health", "/metrics", "/admin/stats", "/dashboard"):  # only the proxied API is limited
        response = httpx.get(proxy.url + path, headers=admin_headers(proxy))
        assert response.status_code == 200, path
        assert "x-ratelimit-limit" not in response.headers


def test_off_by_default(start_proxy: Any) -> None:
    proxy = start_proxy()
    answers = [chat(proxy) for _ in range(5)]
    assert all(a.status_code == 200 and "x-ratelimit-limit" not in a.headers for a in answers)


def test_without_a_key_the_budget_is_the_client_address(start_proxy: Any) -> None:
    proxy = start_proxy(rate_limit_per_minute=2)
    answers = [httpx.post(proxy.base_url + "/chat/completions", json=BODY, timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]


def test_two_replicas_on_one_redis_share_the_budget(start_proxy: Any, redis_url: str,
                                                    redis_server: Any) -> None:
    with redis_server.client() as client:
        client.set("otherapp:counter", b"7")
    first = start_proxy(rate_limit_per_minute=4, redis_url=redis_url)
    second = start_proxy(rate_limit_per_minute=4, redis_url=redis_url)
    answers = [chat(first), chat(second), chat(first), chat(second), chat(first), chat(second)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
    with redis_server.client() as client:
        keys = [k.decode() for k in client.scan_iter("cachegate:ratelimit:*")]
        assert len(keys) == 1
        assert 0 < client.ttl(keys[0]) <= 61
        assert client.get("otherapp:counter") == b"7"


def test_redis_down_fails_open(start_proxy: Any) -> None:
    from tests.support.servers import free_port

    proxy = start_proxy(rate_limit_per_minute=1, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout=0.2)
    assert [chat(proxy).status_code for _ in range(3)] == [200, 200, 200]


def preflight(proxy: ProxyServer, origin: str, path: str = "/v1/chat/completions") -> httpx.Response:
    return httpx.options(proxy.url + path, headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-cache-namespace"})


def test_cors_preflight_allowed_and_refused(start_proxy: Any) -> None:
    proxy = start_proxy(allowed_origins=("https://app.example",), rate_limit_per_minute=1)
    allowed = preflight(proxy, "https://app.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = preflight(proxy, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # preflights do not spend the rate limit; the real request carries the CORS headers and exposes ours
    real = httpx.post(proxy.base_url + "/chat/completions", json=BODY, timeout=10,
                      headers={"origin": "https://app.example", "authorization": "Bearer sk-test-alice"})
    assert real.status_code == 200
    assert real.headers["access-control-allow-origin"] == "https://app.example"
    exposed = real.headers["access-control-expose-headers"].lower()
    assert "x-cache" in exposed and "x-ratelimit-remaining" in exposed
    other = httpx.post(proxy.base_url + "/chat/completions", json=BODY, timeout=10,
                       headers={"origin": "https://evil.example", "authorization": "Bearer sk-test-bob"})
    assert "access-control-allow-origin" not in other.headers


def test_no_cors_without_allowed_origins(start_proxy: Any) -> None:
    proxy = start_proxy()
    response = preflight(proxy, "https://app.example")
    assert "access-control-allow-origin" not in response.headers
