"""What crosses to and from the upstream on the chat route: the query string, the upstream's own headers
next to cachegate's, and strict upstreams that refuse the stream_options cachegate adds (issue 10, items
6-8 and 16)."""

from __future__ import annotations

import httpx
import orjson

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "headers"}]}
AUTH = {"authorization": "Bearer sk-test-alice"}


def post(proxy: ProxyServer, *, query: str = "", body: dict[str, object] = BODY,
         **headers: str) -> httpx.Response:
    url = proxy.base_url + "/chat/completions" + (f"?{query}" if query else "")
    return httpx.post(url, json=body, headers={**AUTH, **headers}, timeout=10)


def test_the_query_string_is_forwarded_and_part_of_the_key(proxy: ProxyServer, sim: SimulatorServer) -> None:
    first = post(proxy, query="api-version=2024-10-21")
    assert first.status_code == 200 and sim.state.last_query == "api-version=2024-10-21"
    assert post(proxy, query="api-version=2024-10-21").headers["x-cache"] == "HIT"
    assert post(proxy, query="api-version=2025-01-01").headers["x-cache"] == "MISS"  # another API version
    assert post(proxy).headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 3


def test_the_upstreams_own_headers_do_not_collide_with_cachegates(proxy: ProxyServer) -> None:
    upstream = {"x-request-id": "req_upstream_1", "x-cache": "Miss from cloudfront", "age": "12",
                "cache-control": "max-age=60"}
    response = post(proxy, **{"x-sim-response-headers": orjson.dumps(upstream).decode()})
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]  # one, ours
    assert response.headers["x-request-id"] != "req_upstream_1"
    assert response.headers["x-upstream-request-id"] == "req_upstream_1"
    assert response.headers.get_list("x-cache") == ["MISS"]
    assert "age" not in response.headers and "cache-control" not in response.headers
    hit = post(proxy)
    assert hit.headers.get_list("x-cache") == ["HIT"] and "x-upstream-request-id" not in hit.headers


def test_cookies_and_expect_never_reach_the_upstream(proxy: ProxyServer, sim: SimulatorServer) -> None:
    post(proxy, cookie="cachegate_monitor=secret-session", connection="x-private", **{"x-private": "1"})
    assert "cookie" not in sim.state.last_headers and "x-private" not in sim.state.last_headers


def test_a_strict_upstream_that_refuses_stream_options_is_asked_again_without(proxy: ProxyServer,
                                                                             sim: SimulatorServer) -> None:
    strict = {"x-sim-reject-stream-options": "true"}
    stream = {**BODY, "stream": True}
    first = post(proxy, body=stream, **strict)
    assert first.status_code == 200 and first.content.endswith(b"data: [DONE]\n\n")
    assert sim.state.chat_calls == 2  # refused once, then asked with the client's own body
    assert "stream_options" not in sim.state.last_body
    second = post(proxy, body={**stream, "messages": [{"role": "user", "content": "again"}]}, **strict)
    assert second.status_code == 200 and sim.state.chat_calls == 3  # remembered for this model: asked once


def test_a_400_about_something_else_is_the_clients_answer(proxy: ProxyServer, sim: SimulatorServer) -> None:
    refused = post(proxy, body={**BODY, "stream": True}, **{"x-sim-status": "400"})
    assert refused.status_code == 400 and sim.state.chat_calls == 1
