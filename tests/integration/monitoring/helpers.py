"""Helpers for the monitoring integration tests: ask the proxy, read its metrics, wait for flushes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.proxy import ProxyServer

T = TypeVar("T")
MODEL = "gpt-4o-mini"
MINI = {"input": 0.15, "cached_input": 0.075, "output": 0.6}  # USD per 1M tokens, the shipped price


def chat(proxy: ProxyServer, content: str = "What is a cache?", *, model: str = MODEL,
         headers: dict[str, str] | None = None, api_key: str = "sk-test-alice", **params: Any) -> Any:
    return proxy.client(api_key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], extra_headers=headers or {}, **params)


def chat_stream(proxy: ProxyServer, content: str, **params: Any) -> tuple[Any, list[Any]]:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": content}], stream=True, **params)
    return raw, list(raw.parse())


def wait_for(read: Callable[[], T], ready: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Poll ``read()`` until ``ready(value)``; returns the last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ready(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def metrics(proxy: ProxyServer) -> dict[str, Any]:
    response = httpx.get(proxy.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def metrics_when(proxy: ProxyServer, total_requests: int, timeout: float = 5.0) -> dict[str, Any]:
    """``/metrics`` once it has counted ``total_requests`` chat requests (others' flushes may lag a second)."""
    return wait_for(lambda: metrics(proxy),
                    lambda body: body["cache_performance"]["total_requests"] >= total_requests, timeout)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_prometheus(text: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def prometheus(proxy: ProxyServer, path: str = "/metrics/prometheus") -> Samples:
    response = httpx.get(proxy.url + path, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse_prometheus(response.text)


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def usage_of(response: Any) -> tuple[int, int]:
    usage = response.parse().usage
    return usage.prompt_tokens, usage.completion_tokens


def mini_cost(prompt: int, completion: int) -> float:
    return (prompt * MINI["input"] + completion * MINI["output"]) / 1e6
