"""GET /kv-cache-metrics: the provider's own prompt caching per model, from live traffic through the proxy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.monitoring.helpers import MINI, MODEL, chat, usage_of, wait_for


def test_prompt_and_cached_tokens_ratio_and_dollars_per_model(start_proxy: Any) -> None:
    proxy = start_proxy()
    first = chat(proxy, "one long prompt", headers={"x-sim-cached-tokens": "2"})
    second = chat(proxy, "another long prompt", headers={"x-sim-cached-tokens": "3"})
    assert chat(proxy, "one long prompt").headers["x-cache"] == "HIT"  # served by cachegate: not the provider's
    other = chat(proxy, "a prompt for another model", model="gpt-4o")
    body = wait_for(lambda: httpx.get(proxy.url + "/kv-cache-metrics").json(),
                    lambda b: b["total"]["requests"] == 3)
    prompt_mini = usage_of(first)[0] + usage_of(second)[0]
    rows = {row["model"]: row for row in body["models"]}
    mini = rows[MODEL]
    assert (mini["requests"], mini["prompt_tokens"], mini["cached_tokens"]) == (2, prompt_mini, 5)
    assert mini["cached_ratio"] == round(5 / prompt_mini, 4)
    assert mini["saved_usd"] == pytest.approx(5 * (MINI["input"] - MINI["cached_input"]) / 1e6)
    assert (rows["gpt-4o"]["cached_tokens"], rows["gpt-4o"]["saved_usd"]) == (0, 0)
    assert rows["gpt-4o"]["prompt_tokens"] == usage_of(other)[0]
    assert body["total"]["cached_tokens"] == 5
    assert body["total"]["saved_usd"] == pytest.approx(mini["saved_usd"])


def test_it_is_a_monitor_route(start_proxy: Any) -> None:
    proxy = start_proxy(monitor_api_key="mon")
    assert httpx.get(proxy.url + "/kv-cache-metrics").status_code == 401
    answer = httpx.get(proxy.url + "/kv-cache-metrics", headers={"authorization": "Bearer mon"})
    assert answer.status_code == 200 and answer.json()["models"] == []
