"""The dashboard's recent requests: every answered ``/v1/*`` request, newest first, without content."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.proxy import ProxyServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a secret question"}]}


def test_recent_requests_list_what_happened_newest_first(start_proxy: Any) -> None:
    proxy: ProxyServer = start_proxy()
    client = proxy.client()
    client.chat.completions.create(**BODY)
    client.chat.completions.create(**BODY)
    client.chat.completions.create(**BODY, extra_headers={"x-bypass-cache": "true"})
    list(client.chat.completions.create(**BODY, stream=True))
    bad = httpx.post(proxy.base_url + "/chat/completions", json={"model": "m"}, timeout=10)
    assert bad.status_code == 400
    client.models.list()
    httpx.get(proxy.url + "/health", timeout=10)  # not under /v1: not listed

    rows = httpx.get(proxy.url + "/dashboard/data", timeout=10).json()["recent_requests"]
    assert [(r["method"], r["path"], r["outcome"], r["status"], r["stream"]) for r in rows] == [
        ("GET", "/v1/models", "none", 200, False),
        ("POST", "/v1/chat/completions", "none", 400, False),
        ("POST", "/v1/chat/completions", "exact_hit", 200, True),
        ("POST", "/v1/chat/completions", "bypass", 200, False),
        ("POST", "/v1/chat/completions", "exact_hit", 200, False),
        ("POST", "/v1/chat/completions", "miss", 200, False),
    ]
    hit, miss = rows[4], rows[5]
    assert hit["tier"] == "exact" and miss["tier"] is None
    assert hit["model"] == miss["model"] == "gpt-4o-mini"
    assert hit["tokens"] == miss["tokens"] > 0  # a hit shows the tokens it saved
    assert all(r["duration_ms"] >= 0 and len(r["request_id"]) == 32 for r in rows)
    assert rows[0]["time"] >= rows[-1]["time"]
    assert "secret" not in str(rows)
