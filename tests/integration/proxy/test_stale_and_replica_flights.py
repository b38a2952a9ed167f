"""Issue 14 on the chat path, through real proxies: an expired entry answers when the upstream fails
(stale-if-error), and identical misses on two replicas sharing one Redis make one upstream call."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.proxy import ProxyServer, replicas
from tests.support.servers import RedisServer, SimulatorServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "stale or not?"}]}
AUTH = {"authorization": "Bearer sk-test-alice"}


def post(proxy: ProxyServer, **headers: str) -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", json=BODY, headers={**AUTH, **headers}, timeout=15)


def expired(proxy: ProxyServer) -> None:
    """One entry with a 1 s TTL, then waited past it."""
    assert post(proxy, **{"x-cache-ttl": "1"}).headers["x-cache"] == "MISS"
    time.sleep(0.3)
    assert post(proxy).headers["x-cache"] == "HIT"
    time.sleep(1.2)


def test_an_expired_entry_answers_when_the_upstream_fails(proxy: ProxyServer, sim: SimulatorServer) -> None:
    expired(proxy)
    stale = post(proxy, **{"x-sim-status": "503"})
    assert stale.status_code == 200 and stale.headers["x-cache"] == "STALE"
    assert int(stale.headers["age"]) >= 1 and stale.json()["choices"][0]["message"]["content"].startswith("[1]")
    refused = post(proxy, **{"x-sim-status": "503", "cache-control": "max-stale=0"})
    assert refused.status_code == 503  # the client refused a stale answer: the upstream's error, as it is
    fresh = post(proxy)
    assert fresh.headers["x-cache"] == "MISS"  # an expired entry never answers while the upstream does
    metrics = httpx.get(proxy.url + "/metrics", timeout=5).json()["cache_performance"]
    assert metrics["stale_answers"] == 1


def test_an_unreachable_upstream_is_answered_stale_too(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_timeout=2.0)
    expired(proxy)
    slow = post(proxy, **{"x-sim-delay": "5"})  # the upstream does not answer in time: a 504 otherwise
    assert slow.status_code == 200 and slow.headers["x-cache"] == "STALE"


def test_no_stale_answer_past_the_window(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_stale_if_error=1)
    expired(proxy)
    time.sleep(0.5)
    assert post(proxy, **{"x-sim-status": "503"}).status_code == 503  # expired 1.7 s ago, the window is 1 s


async def test_identical_misses_on_two_replicas_make_one_upstream_call(sim: SimulatorServer, tmp_path: Path,
                                                                      redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.flushall()
    with replicas(sim.base_url, tmp_path, redis_server.url) as both:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*[
                client.post(both[i % 2].base_url + "/chat/completions", json=BODY,
                            headers={**AUTH, "x-sim-delay": "1"}) for i in range(20)])
    assert [a.status_code for a in answers] == [200] * 20
    assert sim.state.chat_calls == 1  # one upstream call for twenty requests over two replicas
    assert {a.json()["choices"][0]["message"]["content"] for a in answers} == {"[1] You said: stale or not?"}
