"""The ledger survives restarts (SQLite under DATA_DIR, or Redis) and replicas on one Redis add up."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.monitoring.helpers import chat, metrics, metrics_when, mini_cost, prometheus, sample, usage_of


def _totals(body: dict[str, Any]) -> tuple[Any, ...]:
    perf, tokens, cost = body["cache_performance"], body["token_usage"], body["cost_analysis"]
    return (perf["total_requests"], perf["exact_hits"], perf["misses"], tokens["tokens_saved"],
            tokens["tokens_used"], cost["cost_saved_usd"], cost["cost_spent_usd"])


@pytest.mark.parametrize("on_redis", [False, True], ids=["sqlite", "redis"])
def test_counters_survive_a_restart(start_proxy: Any, redis_url: str, on_redis: bool) -> None:
    overrides = {"redis_url": redis_url} if on_redis else {}
    first = start_proxy(**overrides)
    prompt, completion = usage_of(chat(first))
    chat(first)
    chat(first)
    before = metrics_when(first, 3)
    since = before["ledger"]["since"]
    assert before["ledger"]["backend"] == ("redis" if on_redis else "sqlite")
    first.stop()  # flushes the ledger

    second = start_proxy(**overrides)
    after = metrics(second)
    assert _totals(after) == _totals(before)
    assert _totals(after)[:5] == (3, 2, 1, 2 * (prompt + completion), prompt + completion)
    assert after["cost_analysis"]["cost_saved_usd"] == pytest.approx(2 * mini_cost(prompt, completion))
    assert after["ledger"]["since"] == since
    assert after["by_model"][0]["requests"] == 3
    chat(second, "something new")
    assert metrics(second)["cache_performance"]["total_requests"] == 4
    prom = prometheus(second)
    assert sample(prom, "cachegate_ledger_requests") == 4  # all-time
    assert sample(prom, "cachegate_http_requests_total", route="/v1/chat/completions", method="POST",
                  status="200") == 1  # this process


def test_two_replicas_on_one_redis_add_up(start_proxy: Any, redis_url: str) -> None:
    a = start_proxy(redis_url=redis_url)
    b = start_proxy(redis_url=redis_url)
    prompt, completion = usage_of(chat(a))
    chat(a)
    for _ in range(3):
        assert chat(b).headers["x-cache"] == "HIT"  # the exact tier is shared too
    for proxy in (a, b):
        body = metrics_when(proxy, 5)
        assert body["cache_performance"]["total_requests"] == 5
        assert body["cache_performance"]["exact_hits"] == 4
        assert body["cache_performance"]["misses"] == 1
        assert body["token_usage"]["tokens_saved"] == 4 * (prompt + completion)
        assert body["cost_analysis"]["cost_saved_usd"] == pytest.approx(4 * mini_cost(prompt, completion))
