"""Whose cache a request uses: the HMAC of its credentials under the install's secret, the credential and
routing headers of CACHE_KEY_HEADERS, shared by replicas (issue 10, items 12 and 13)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.proxy import ProxyServer
from tests.support.servers import RedisServer, SimulatorServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "whose?"}]}


def ask(proxy: ProxyServer, key: str = "sk-placeholder", **headers: str) -> httpx.Response:
    response = httpx.post(proxy.base_url + "/chat/completions", json=BODY,
                          headers={"authorization": f"Bearer {key}", **headers}, timeout=10)
    assert response.status_code == 200, response.text
    time.sleep(0.05)  # the entry is written off the request path
    return response


def test_gateway_credentials_separate_tenants_behind_one_placeholder_key(proxy: ProxyServer) -> None:
    assert ask(proxy, **{"x-api-key": "team-a"}).headers["x-cache"] == "MISS"
    assert ask(proxy, **{"x-api-key": "team-a"}).headers["x-cache"] == "HIT"
    assert ask(proxy, **{"x-api-key": "team-b"}).headers["x-cache"] == "MISS"  # another client of the gateway
    assert ask(proxy, **{"helicone-auth": "Bearer h1"}).headers["x-cache"] == "MISS"


def test_routing_headers_change_the_key(proxy: ProxyServer) -> None:
    ask(proxy, **{"openai-organization": "org-1"})
    assert ask(proxy, **{"openai-organization": "org-1"}).headers["x-cache"] == "HIT"
    assert ask(proxy, **{"openai-organization": "org-2"}).headers["x-cache"] == "MISS"
    assert ask(proxy, **{"openai-project": "proj-1", "openai-organization": "org-1"}).headers["x-cache"] == "MISS"


def test_cache_key_headers_is_configurable(start_proxy: Any) -> None:
    proxy = start_proxy(cache_key_headers=("x-tenant-region",))
    ask(proxy, **{"x-tenant-region": "eu"})
    assert ask(proxy, **{"x-tenant-region": "us"}).headers["x-cache"] == "MISS"
    assert ask(proxy, **{"x-api-key": "team-b"}).headers["x-cache"] == "MISS"  # a new region header value...
    assert ask(proxy, **{"x-api-key": "team-c"}).headers["x-cache"] == "HIT"  # ...but x-api-key is not listed


def test_the_tenant_hash_is_keyed_by_a_secret_made_on_first_start(start_proxy: Any, tmp_path: Path) -> None:
    proxy = start_proxy()
    ask(proxy, key="sk-1234")
    secret = tmp_path / "data" / "tenant.secret"
    assert secret.exists() and oct(os.stat(secret).st_mode & 0o777) == "0o600"
    rows: list[Any] = []
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:  # usage rows are written in the background, each second
        time.sleep(0.2)
        rows = sqlite3.connect(tmp_path / "data" / "monitoring.sqlite3").execute(
            "SELECT api_key_hash FROM usage").fetchall()
    assert rows and all(row[0] != hashlib.sha256(b"sk-1234").hexdigest() for row in rows)  # not a dictionary hit


def test_replicas_on_one_redis_share_tenants_without_configuring_a_secret(sim: SimulatorServer, tmp_path: Path,
                                                                        redis_server: RedisServer) -> None:
    from tests.support.proxy import replicas

    with redis_server.client() as client:
        client.flushall()
    with replicas(sim.base_url, tmp_path, redis_server.url) as proxies:
        assert ask(proxies[0]).headers["x-cache"] == "MISS"
        assert ask(proxies[1]).headers["x-cache"] == "HIT"  # same tenant on the other replica


def test_replicas_share_tenants_through_tenant_secret(sim: SimulatorServer, tmp_path: Path,
                                                      redis_server: RedisServer) -> None:
    from tests.support.proxy import proxy_settings

    with redis_server.client() as client:
        client.flushall()
        client.set("cachegate:tenant-secret", "what-redis-says")
    one = ProxyServer(proxy_settings(sim.base_url, tmp_path / "a", redis_url=redis_server.url,
                                     tenant_secret="configured"))
    two = ProxyServer(proxy_settings(sim.base_url, tmp_path / "b", redis_url=redis_server.url))
    for proxy in (one, two):
        proxy.start()
    try:
        assert ask(one).headers["x-cache"] == "MISS"
        assert ask(two).headers["x-cache"] == "MISS"  # TENANT_SECRET wins over the shared one: other tenants
    finally:
        for proxy in (one, two):
            proxy.stop()
