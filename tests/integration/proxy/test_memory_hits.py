"""Exact hits held in memory, answered before ASGI (proxy.chat.memory_hits), over real HTTP on every backend.

What is checked: such hits are answered early (the answerer is wrapped to count); the response is the one the
endpoint sends for the same hit (a proxy served without early answers is the reference); the monitoring counts
them as it counts every request; the request id is the client's when sane; and the early path is off when
something wraps the chat route (client keys, a rate limit, CORS), where hits still work.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from proxy.app import create_app
from proxy.http.protocol import EarlyReply
from tests.integration.monitoring.helpers import metrics_when, prometheus, sample
from tests.support.proxy import ProxyServer, proxy_settings

BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is a cache?"}]})
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-test-alice"}
#: what differs between two answers of the same request, whoever sends them
VARYING = {b"date", b"age", b"x-request-id", b"x-cache-original-id"}  # the simulator numbers its ids


def counted(proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each request held for an early answer got one (the live answerer, wrapped)."""
    early = proxy.app.early
    assert early is not None
    inner = early.answer
    answered: list[bool] = []

    def answer(scope: MutableMapping[str, Any], body: bytes) -> EarlyReply | None:
        reply = inner(scope, body)
        answered.append(reply is not None)
        return reply

    monkeypatch.setattr(early, "answer", answer)
    return answered


def post(proxy: ProxyServer, **headers: str) -> httpx.Response:
    response = httpx.post(proxy.base_url + "/chat/completions", content=BODY, headers={**HEADERS, **headers},
                          timeout=10)
    assert response.status_code == 200, response.text
    return response


def test_memory_hits_are_answered_early_on_every_backend(proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> None:
    answered = counted(proxy, monkeypatch)
    responses = [post(proxy) for _ in range(5)]
    assert [r.headers["x-cache"] for r in responses] == ["MISS", "HIT", "HIT", "HIT", "HIT"]
    if proxy.parts.exact.levels[0].name == "memory":
        assert answered == [False, True, True, True, True]  # the miss went on to the app; every hit was early
    else:
        # Redis: a hit is early once the tracked copy holds the entry (promoted by the first hit read from Redis)
        assert answered[0] is False and answered[-2:] == [True, True]
    assert len({r.headers["x-request-id"] for r in responses}) == 5
    assert len({r.json()["id"] for r in responses}) == 5


def test_an_early_hit_is_the_response_the_endpoint_sends(start_proxy: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "one-tenant-secret-for-both-proxies"  # so that both name the entry alike
    early = start_proxy(data_dir=str(tmp_path / "early"), tenant_secret=secret)
    late = start_proxy(data_dir=str(tmp_path / "late"), tenant_secret=secret, early=False)
    answered = counted(early, monkeypatch)
    hits = []
    for proxy in (early, late):
        miss, hit = post(proxy), post(proxy)
        assert _fixed(hit) == _fixed(miss)  # the stored answer (the simulator numbers its answers: per proxy)
        hits.append(hit)
    assert answered == [False, True]
    first, second = (hit.headers.raw for hit in hits)
    assert [name for name, _ in first] == [name for name, _ in second]  # the same headers, in the same order
    assert [pair for pair in first if pair[0].lower() not in VARYING] == \
        [pair for pair in second if pair[0].lower() not in VARYING]
    assert {name.lower() for name, _ in first} >= {b"x-cache", b"x-cache-tier", b"x-cache-key", b"age",
                                                    b"x-request-id", b"server", b"date", b"content-length"}
    assert list(hits[0].json()) == list(hits[1].json())  # the same fields, in the same order
    assert hits[0].json()["id"].startswith("chatcmpl-") and len(hits[0].json()["id"]) == len(hits[1].json()["id"])


def _fixed(response: httpx.Response) -> dict[str, Any]:
    """The answer without what every answer has of its own (its completion id and time)."""
    return {k: v for k, v in response.json().items() if k not in ("id", "created")}


def test_early_hits_are_counted_as_every_request_is(start_proxy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = start_proxy()
    answered = counted(proxy, monkeypatch)
    post(proxy)
    ids = [post(proxy, **{"x-request-id": f"client-id-{n}"}).headers["x-request-id"] for n in range(4)]
    assert answered == [False, True, True, True, True]
    assert ids == [f"client-id-{n}" for n in range(4)]  # a sane client id is echoed, as by the middleware
    body = metrics_when(proxy, 5)
    assert (body["cache_performance"]["total_requests"], body["cache_performance"]["exact_hits"]) == (5, 4)
    prom = prometheus(proxy)
    chat = "/v1/chat/completions"
    assert sample(prom, "cachegate_http_requests_total", route=chat, method="POST", status="200") == 5
    assert sample(prom, "cachegate_cache_lookups_total", tier="exact", outcome="hit") == 4
    assert sample(prom, "cachegate_request_duration_seconds_count", cache="exact_hit") == 4
    rows = httpx.get(proxy.url + "/dashboard/data", timeout=10).json()["recent_requests"]
    assert [(r["outcome"], r["request_id"]) for r in rows[:4]] == [("exact_hit", f"client-id-{n}")
                                                                   for n in (3, 2, 1, 0)]
    assert all(r["tokens"] > 0 and r["tier"] == "exact" for r in rows[:4])


@pytest.mark.parametrize("setting", [{"client_api_keys": ("sk-test-alice",)}, {"rate_limit_per_minute": 1000},
                                     {"allowed_origins": ("https://app.example",)}])
def test_no_early_answers_when_something_wraps_the_chat_route(tmp_path: Path, setting: dict[str, Any]) -> None:
    assert create_app(proxy_settings("http://127.0.0.1:9/v1", tmp_path, **setting)).early is None
    assert create_app(proxy_settings("http://127.0.0.1:9/v1", tmp_path / "plain")).early is not None


def test_with_cors_hits_still_come_from_the_cache(start_proxy: Any) -> None:
    proxy = start_proxy(allowed_origins=("https://app.example",))
    assert proxy.app.early is None
    origin = {"origin": "https://app.example"}
    assert [post(proxy, **origin).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
    assert post(proxy, **origin).headers["access-control-allow-origin"] == "https://app.example"
