"""Failing parts: the upstream (502/504 with an OpenAI-style body) and Redis (fail open)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.proxy import ProxyServer
from tests.support.servers import RedisServer, SimulatorServer, free_port

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Is anyone there?"}]


def post(proxy: ProxyServer, **headers: str) -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", json={"model": MODEL, "messages": MESSAGES},
                      headers={"authorization": "Bearer sk-test-alice", **headers}, timeout=10)


def test_unreachable_upstream_is_502(start_proxy: Any) -> None:
    proxy = start_proxy(upstream_base_url=f"http://127.0.0.1:{free_port()}/v1")
    for response in (post(proxy), httpx.get(proxy.base_url + "/models")):
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unreachable"
        assert response.headers["x-request-id"]


class BrokenUpstream:
    """A part of the proxy with a bug: it raises something no handler expects."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in a part")

    async def aclose(self) -> None:
        pass


def test_a_bug_is_an_openai_style_500_that_points_at_the_log(start_proxy: Any, sim: SimulatorServer,
                                                              caplog: Any) -> None:
    proxy = start_proxy(app_kwargs={"upstream": BrokenUpstream(sim.base_url)})
    response = post(proxy, **{"x-request-id": "bug-1"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "bug-1"
    assert "bug in a part" not in response.text  # details stay in the log
    assert any("unhandled error on POST /v1/chat/completions" in r.getMessage() and r.exc_info
               for r in caplog.records)
    assert post(proxy).status_code == 500  # and nothing was stored


def test_slow_upstream_is_504(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_timeout=0.2)
    response = post(proxy, **{"x-sim-delay": "1"})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert post(proxy).status_code == 200  # nothing was stored by the failure: a normal miss


def test_stream_that_stalls_mid_way_ends_with_an_error_event(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_timeout=0.3)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", proxy.base_url + "/chat/completions", json=body,
                      headers={"x-sim-chunk-delay": "1"}, timeout=10) as response:
        text = response.read().decode()
    assert response.status_code == 200
    assert '"upstream_timeout"' in text
    assert "[DONE]" not in text
    assert post(proxy).headers["x-cache"] == "MISS"


def test_redis_going_away_fails_open_and_coming_back_is_picked_up(start_proxy: Any,
                                                                  sim: SimulatorServer) -> None:
    with RedisServer() as redis_server:
        proxy = start_proxy(redis_url=redis_server.url, redis_timeout=0.25)
        assert post(proxy).headers["x-cache"] == "MISS"
        assert post(proxy).headers["x-cache"] == "HIT"
        redis_server.kill()  # the port is kept: start() brings it back where the proxy looks
        for _ in range(3):
            response = post(proxy)
            assert response.status_code == 200
            assert response.headers["x-cache"] == "MISS"
        health = httpx.get(proxy.url + "/health")
        assert health.status_code == 503
        assert health.json()["services"]["redis"]["status"] == "down"
        assert health.json()["services"]["redis"]["failures"] >= 3
        redis_server.start()
        # /health asks Redis even while its circuit is open; the answer closes it
        assert httpx.get(proxy.url + "/health").status_code == 200
        assert post(proxy).headers["x-cache"] == "MISS"
        assert post(proxy).headers["x-cache"] == "HIT"
    assert sim.state.chat_calls == 5  # one miss, three misses while Redis is away, one after


def test_after_a_failure_redis_is_skipped_for_the_cool_down_then_tried_again(start_proxy: Any,
                                                                            sim: SimulatorServer) -> None:
    with RedisServer() as redis_server:
        proxy = start_proxy(redis_url=redis_server.url, redis_cooldown=0.5)
        redis_server.kill()
        assert post(proxy).headers["x-cache"] == "MISS"  # the failure opens the circuit
        redis_server.start()
        assert post(proxy).headers["x-cache"] == "MISS"  # skipped: nothing read, nothing stored
        assert post(proxy).headers["x-cache"] == "MISS"
        assert proxy.parts.redis is not None and proxy.parts.redis.breaker.skipped >= 2
        time.sleep(0.6)  # the cool-down is over: the next call is the trial, and it succeeds
        assert post(proxy).headers["x-cache"] == "MISS"
        assert post(proxy).headers["x-cache"] == "HIT"


def test_a_client_leaving_mid_stream_stops_the_upstream_and_nothing_is_stored(start_proxy: Any,
                                                                              sim: SimulatorServer) -> None:
    proxy = start_proxy()
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    slow = {"x-sim-chunk-delay": "0.5", "authorization": "Bearer sk-test-alice"}  # ~5 s to the end
    with httpx.stream("POST", proxy.base_url + "/chat/completions", json=body, headers=slow,
                      timeout=10) as response:
        assert response.status_code == 200
        next(response.iter_raw())  # the first event, then hang up
    deadline = time.monotonic() + 3
    while sim.state.streams_abandoned == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.state.streams_abandoned == 1  # the proxy let go of the upstream well before its end
    again = httpx.post(proxy.base_url + "/chat/completions", json={**body, "stream": False},
                       headers={"authorization": "Bearer sk-test-alice"}, timeout=10)
    assert again.headers["x-cache"] == "MISS"
    metrics = httpx.get(proxy.url + "/metrics", timeout=10).json()
    assert metrics["streaming"]["active"] == 0
