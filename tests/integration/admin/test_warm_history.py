"""Warm from history (CACHE_KEEP_REQUESTS): the most-hit entries that expired are asked again, under their own
keys, through the real proxy and the simulator."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer


def ask(proxy: ProxyServer, content: str, *, key: str = "sk-test-alice", ttl: str | None = "1") -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "x-cache-namespace": "docs"}
    if ttl is not None:
        headers["x-cache-ttl"] = ttl
    response = httpx.post(proxy.base_url + "/chat/completions", headers=headers, timeout=10,
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200, response.text
    return response


def warm(proxy: ProxyServer, body: Any, warm_key: str | None = "sk-test-alice") -> httpx.Response:
    headers = {"x-warm-api-key": warm_key} if warm_key else {}
    return httpx.post(proxy.url + "/admin/cache/warm", json=body, headers=headers, timeout=30)


def expire(proxy: ProxyServer) -> None:
    """Wait for the one-second entries to expire (and for the hits to be counted: they are, at the warm call)."""
    deadline = time.monotonic() + 10
    while len(proxy.parts.jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.1)


def test_the_most_hit_expired_entries_are_asked_again(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_keep_requests=True)
    for content, times in (("popular", 4), ("liked", 3), ("once", 1)):
        first = ask(proxy, content)
        assert first.headers["x-cache"] == "MISS"
        for _ in range(times - 1):
            assert ask(proxy, content).headers["x-cache"] in ("HIT", "MISS")
    ask(proxy, "someone else's", key="sk-test-bob")
    expire(proxy)
    calls = sim.state.chat_calls
    body = warm(proxy, {"from": "popular", "top": 2}).json()
    assert [(r["hits"], r["status"], r["x_cache"], r["cached"]) for r in body["results"]] == [
        (3, 200, "MISS", True), (2, 200, "MISS", True)]
    assert sim.state.chat_calls == calls + 2
    popular, liked, once = (ask(proxy, content, ttl=None) for content in ("popular", "liked", "once"))
    assert (popular.headers["x-cache"], liked.headers["x-cache"]) == ("HIT", "HIT")  # warmed, for the default TTL
    assert [r["key"] for r in body["results"]] == [popular.headers["x-cache-key"], liked.headers["x-cache-key"]]
    assert once.headers["x-cache"] == "MISS"  # not among the top two
    assert sim.state.chat_calls == calls + 3


def test_another_tenants_entry_is_skipped_without_its_key(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_keep_requests=True)
    ask(proxy, "bob's question", key="sk-test-bob")
    expire(proxy)
    body = warm(proxy, {"from": "popular", "top": 5}).json()
    [result] = body["results"]
    assert result["skipped"] and "X-Warm-Api-Key" in result["error"] and body["skipped"] == 1
    assert warm(proxy, {"from": "popular", "top": 5}, warm_key="sk-test-bob").json()["results"][0]["status"] == 200


def test_history_needs_the_setting_and_a_good_body(start_proxy: Any) -> None:
    off = start_proxy()
    refused = warm(off, {"from": "popular", "top": 3})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "history_off"
    on = start_proxy(cache_keep_requests=True)
    for body, param in (({"from": "everything"}, "from"), ({"from": "popular", "top": 0}, "top"),
                        ({"from": "popular", "top": "3"}, "top"), ({"from": "popular", "top": 3, "x": 1}, "x")):
        bad = warm(on, body)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param, body
