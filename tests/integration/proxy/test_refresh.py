"""Refresh-ahead and stale-while-revalidate through the real proxy and the simulator: the client is answered
from the cache at once, the refresh happens in the background and the next request gets the new answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.proxy import ProxyServer, replicas
from tests.support.servers import RedisServer, SimulatorServer


def ask(proxy: ProxyServer, content: str = "fresh please", **headers: str) -> httpx.Response:
    response = httpx.post(proxy.base_url + "/chat/completions", timeout=10,
                          headers={"authorization": "Bearer sk-test-alice", **headers},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}],
                                **({"temperature": 1.5} if content.startswith("creative") else {})})
    assert response.status_code == 200, response.text
    return response


def text(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def until(ready: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.02)


def settled(proxy: ProxyServer) -> None:
    until(lambda: not len(proxy.parts.jobs))


def test_stale_while_revalidate_serves_stale_and_refreshes(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy()
    first = ask(proxy, **{"x-cache-ttl": "1"})
    settled(proxy)
    time.sleep(1.1)  # the entry expires (it is kept CACHE_KEEP_EXPIRED seconds longer)
    assert ask(proxy, **{"x-cache-ttl": "1"}).headers["x-cache"] == "MISS"  # no stale unless asked
    settled(proxy)
    time.sleep(1.1)
    stale = ask(proxy, **{"cache-control": "stale-while-revalidate=60"})
    assert stale.headers["x-cache"] == "STALE" and int(stale.headers["age"]) >= 1
    assert text(stale) == text(first).replace("[1]", "[2]")  # the second answer, served stale
    until(lambda: sim.state.chat_calls == 3)
    settled(proxy)
    fresh = ask(proxy)
    assert fresh.headers["x-cache"] == "HIT" and text(fresh).startswith("[3]")
    assert proxy.parts.pipeline.refresher is not None
    assert proxy.parts.pipeline.refresher.counts["refreshed"] == 1


def test_stale_past_the_window_is_a_miss(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_keep_expired=0)
    ask(proxy, **{"x-cache-ttl": "1"})
    settled(proxy)
    time.sleep(1.1)
    assert ask(proxy, **{"cache-control": "stale-while-revalidate=60"}).headers["x-cache"] == "MISS"


def test_refresh_ahead_after_enough_hits(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_refresh_ahead=True, cache_refresh_min_hits=2, cache_refresh_ahead_fraction=1.0)
    ask(proxy)
    settled(proxy)
    assert text(ask(proxy)).startswith("[1]")  # one hit: not yet
    time.sleep(0.1)
    assert sim.state.chat_calls == 1
    hit = ask(proxy)  # two hits (and, with the fraction at 1, any time left): refreshed in the background
    assert hit.headers["x-cache"] == "HIT" and text(hit).startswith("[1]")
    until(lambda: sim.state.chat_calls == 2)
    settled(proxy)
    assert text(ask(proxy)).startswith("[2]")
    ask(proxy, "creative question")
    settled(proxy)
    for _ in range(3):
        ask(proxy, "creative question")
    settled(proxy)
    assert sim.state.chat_calls == 3  # temperature above the creative bound, no seed: never refreshed


def test_refreshes_are_capped_per_minute_and_counted(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_refresh_ahead=True, cache_refresh_min_hits=1, cache_refresh_ahead_fraction=1.0,
                        cache_refresh_max_per_minute=1)
    for content in ("one", "two"):
        ask(proxy, content)
    settled(proxy)
    ask(proxy, "one")
    ask(proxy, "two")
    settled(proxy)
    assert sim.state.chat_calls == 3  # one refresh; the other capped
    prom = httpx.get(proxy.url + "/metrics", params={"format": "prometheus"}).text
    assert 'cachegate_cache_refreshes_total{result="capped"} 1.0' in prom
    assert 'cachegate_cache_refreshes_total{result="refreshed"} 1.0' in prom


def test_two_replicas_refresh_a_stale_entry_once(sim: SimulatorServer, tmp_path: Path,
                                                 redis_server: RedisServer) -> None:
    """Both replicas serve the same expired entry under stale-while-revalidate while the refresh takes a
    second upstream: the lease in Redis lets one of them refresh it."""
    with redis_server.client() as client:
        client.flushall()
    with replicas(sim.base_url, tmp_path, redis_server.url) as both:
        ask(both[0], **{"x-cache-ttl": "1"})
        settled(both[0])
        time.sleep(1.2)
        window = {"cache-control": "stale-while-revalidate=60", "x-sim-delay": "1"}
        answers = [ask(replica, **window) for replica in both]
        assert [a.headers["x-cache"] for a in answers] == ["STALE", "STALE"]
        for replica in both:
            settled(replica)
        counts = [replica.parts.pipeline.refresher.counts for replica in both
                  if replica.parts.pipeline.refresher is not None]
    assert sim.state.chat_calls == 2  # the first answer, then one refresh for both replicas
    assert sum(c["refreshed"] for c in counts) == 1 and sum(c["busy"] for c in counts) == 1
