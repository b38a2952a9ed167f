"""Bad input gets a 4xx with an OpenAI-style error naming the problem; nothing is stored or sent upstream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

GOOD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("content", "headers", "status", "param", "words"), [
    (b"{not json", {}, 400, None, "not valid JSON"),
    (b"[1, 2]", {}, 400, None, "JSON object"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', {}, 400, "model", "'model' is required"),
    (b'{"model": "m"}', {}, 400, "messages", "'messages' is required"),
    (b'{"model": "m", "messages": []}', {}, 400, "messages", "non-empty"),
    (b'{"model": "m", "messages": ["hi"]}', {}, 400, "messages[0]", "role"),
    (b'{"model": 5, "messages": [{"role": "user", "content": "hi"}]}', {}, 400, "model", "string"),
    (None, {"x-cache-ttl": "0"}, 400, "x-cache-ttl", "x-cache-ttl"),
    (None, {"x-cache-ttl": "soon"}, 400, "x-cache-ttl", "x-cache-ttl"),
    (None, {"x-cache-ttl": "31536001"}, 400, "x-cache-ttl", "x-cache-ttl"),
    (None, {"x-bypass-cache": "maybe"}, 400, "x-bypass-cache", "x-bypass-cache"),
    (b'{"model": "' + b"m" * 257 + b'", "messages": [{"role": "user", "content": "hi"}]}', {}, 400, "model", "256"),
    (b'{"model": "gpt\\nINJECTED | line", "messages": [{"role": "user", "content": "hi"}]}', {}, 400, "model",
     "printable"),
    # 300 levels: too deep to build a key for (that was a 500: "Recursion limit reached")
    (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 300 + b"]" * 300 + b"}",
     {}, 400, None, "nested"),
], ids=["malformed", "array", "no-model", "no-messages", "empty-messages", "bad-message", "model-type",
        "ttl-zero", "ttl-text", "ttl-too-big", "bypass-garbage", "model-too-long", "model-newline", "too-deep"])
def test_bad_requests_are_refused(proxy: ProxyServer, sim: SimulatorServer, content: bytes | None,
                                  headers: dict[str, str], status: int, param: str | None, words: str) -> None:
    response = httpx.post(proxy.base_url + "/chat/completions", content=content or httpx.Request(
        "POST", "/", json=GOOD).content, headers={"content-type": "application/json", **headers})
    assert response.status_code == status
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]
    assert sim.state.chat_calls == 0


def test_oversized_body_is_413(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(max_body_bytes=2048)
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 4096}]}
    response = httpx.post(proxy.base_url + "/chat/completions", json=big)
    assert response.status_code == 413
    assert "MAX_BODY_BYTES" in response.json()["error"]["message"]
    chunked = httpx.post(proxy.base_url + "/chat/completions", content=iter([b"{" + b" " * 3000, b"}"]))
    assert chunked.status_code == 413
    assert sim.state.chat_calls == 0


def test_unknown_route_is_an_openai_style_404(proxy: ProxyServer) -> None:
    response = httpx.get(proxy.url + "/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_wrong_method_is_an_openai_style_405(proxy: ProxyServer) -> None:
    response = httpx.delete(proxy.url + "/health")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "GET" in response.headers["allow"]
