"""Issue 10.21: an admin route refuses (400, naming them) parameters it does not declare or cannot read, so a
destructive call never does more than it was asked because a narrowing parameter was not understood."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.admin.test_cache_admin import admin, cached, chat, fill, proxy_wait_for_stores
from tests.support.proxy import ProxyServer
from tests.support.servers import RedisServer, SimulatorServer


@pytest.fixture
def admin_proxy(backend: str, start_proxy: Any, redis_server: RedisServer) -> ProxyServer:
    if backend == "redis":
        with redis_server.client() as client:
            client.flushall()
        return start_proxy(redis_url=redis_server.url, admin_api_key="adm")
    return start_proxy(admin_api_key="adm")


def refused(response: httpx.Response, param: str, code: str = "unknown_parameter") -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code
    assert param in error["message"]


@pytest.mark.parametrize(("params", "body", "param", "code"), [
    ({"pattern": "gpt-4o*"}, None, "pattern", "invalid_value"),  # not over the key layout: never a wider clear
    ({"model": "gpt-4o", "older_than": "an hour"}, None, "older_than", "invalid_value"),
    ({}, {"pattern": "gpt-4o*"}, "pattern", "invalid_value"),
    ({"patern": "cachegate:exact:*"}, None, "patern", "unknown_parameter"),
    ({}, {"tier": "exact", "modle": "gpt-4o"}, "modle", "unknown_parameter"),
    ({"model": ""}, None, "model", "invalid_value"),
    ({"tier": ""}, None, "tier", "invalid_value"),
    ({}, {"model": ""}, "model", "invalid_value"),
    ({"model": ["gpt-4o", "gpt-4o-mini"]}, None, "model", "repeated_parameter"),
    ({"model": "gpt-4o"}, {"model": "gpt-4o-mini"}, "model", "repeated_parameter"),
    ({}, {"model": 4}, "model", "invalid_type"),
    ({}, {"older_than": True}, "older_than", "invalid_type"),  # a number is welcome in a body, a boolean is not
    ({}, {"older_than": -1}, "older_than", "invalid_value"),
], ids=["pattern", "older_than", "body-pattern", "pattern-typo", "typo", "empty-model", "empty-tier",
        "body-empty-model", "model-twice", "query-and-body", "model-not-a-string",
        "older_than-boolean", "older_than-negative"])
def test_clear_with_a_parameter_it_cannot_apply_clears_nothing(admin_proxy: ProxyServer, params: dict[str, Any],
                                                               body: dict[str, Any] | None, param: str,
                                                               code: str) -> None:
    fill(admin_proxy)
    response = admin(admin_proxy, "POST", "/admin/cache/clear", params=params, json=body)
    refused(response, param, code)
    assert cached(admin_proxy) == dict.fromkeys("abcde", True)  # every entry is still there


@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/stats"), ("GET", "/admin/config"),
                                              ("DELETE", "/admin/cache/entries/{key}")])
def test_routes_without_parameters_refuse_any(admin_proxy: ProxyServer, method: str, path: str) -> None:
    chat(admin_proxy, "one")
    proxy_wait_for_stores(admin_proxy)
    key = chat(admin_proxy, "one").headers["x-cache-key"]
    refused(admin(admin_proxy, method, path.format(key=key), params={"force": "1"}), "force")
    assert chat(admin_proxy, "one").headers["x-cache"] == "HIT"  # the entry was not deleted


def test_warm_refuses_unknown_parameters(admin_proxy: ProxyServer, sim: SimulatorServer) -> None:
    requests = [{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "warm"}]}]
    refused(admin(admin_proxy, "POST", "/admin/cache/warm", params={"concurency": "2"}, json=requests), "concurency")
    refused(admin(admin_proxy, "POST", "/admin/cache/warm", json={"requests": requests, "ttl": 60}), "ttl")
    refused(admin(admin_proxy, "POST", "/admin/cache/warm", params={"concurrency": "2"},
                  json={"requests": requests, "concurrency": 2}), "concurrency", "repeated_parameter")
    assert sim.state.chat_calls == 0
    ok = admin(admin_proxy, "POST", "/admin/cache/warm", json={"requests": requests, "concurrency": 2})
    assert ok.status_code == 200, ok.text


def test_the_refusal_names_every_unknown_parameter(admin_proxy: ProxyServer) -> None:
    response = admin(admin_proxy, "POST", "/admin/cache/clear", params={"zeta": "1", "alpha": "2", "tier": "exact"})
    refused(response, "alpha")
    assert "'alpha', 'zeta'" in response.json()["error"]["message"]
    # and what the route takes
    assert "model, namespace, older_than, pattern, tier" in response.json()["error"]["message"]
