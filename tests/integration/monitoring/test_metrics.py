"""Counters equal what happened, in JSON, Prometheus text and CSV, on both exact-tier backends."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from tests.integration.monitoring.helpers import (
    MINI,
    MODEL,
    chat,
    chat_stream,
    metrics_when,
    mini_cost,
    parse_prometheus,
    prometheus,
    sample,
    usage_of,
)
from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

CHAT = "/v1/chat/completions"


def traffic(proxy: ProxyServer) -> dict[str, Any]:
    """3 misses, 5 exact hits (one streamed), 1 bypass; returns the token counts each answer carried."""
    a = chat(proxy, "first question")
    hits_a = [chat(proxy, "first question") for _ in range(3)]
    b = chat(proxy, "second question")
    hit_b = chat(proxy, "second question")
    bypass = chat(proxy, "first question", headers={"x-bypass-cache": "true"})
    c, c_chunks = chat_stream(proxy, "third question", stream_options={"include_usage": True})
    hit_c, _ = chat_stream(proxy, "third question")
    assert [r.headers["x-cache"] for r in (a, *hits_a, b, hit_b, bypass, c, hit_c)] == [
        "MISS", "HIT", "HIT", "HIT", "MISS", "HIT", "BYPASS", "MISS", "HIT"]
    usage_c = c_chunks[-1].usage
    return {"a": usage_of(a), "b": usage_of(b), "bypass": usage_of(bypass),
            "c": (usage_c.prompt_tokens, usage_c.completion_tokens)}


def test_counts_tokens_and_dollars_are_exact_in_every_format(proxy: ProxyServer, sim: SimulatorServer) -> None:
    tokens = traffic(proxy)
    assert sim.state.chat_calls == 4
    (pa, ca), (pb, cb), (pby, cby), (pc, cc) = tokens["a"], tokens["b"], tokens["bypass"], tokens["c"]
    saved_tokens = 3 * (pa + ca) + (pb + cb) + (pc + cc)
    used_tokens = (pa + ca) + (pb + cb) + (pby + cby) + (pc + cc)
    saved_usd = 3 * mini_cost(pa, ca) + mini_cost(pb, cb) + mini_cost(pc, cc)
    spent_usd = mini_cost(pa, ca) + mini_cost(pb, cb) + mini_cost(pby, cby) + mini_cost(pc, cc)

    body = metrics_when(proxy, 9)
    assert body["cache_performance"] == {"exact_hits": 5, "semantic_hits": 0, "total_hits": 5, "misses": 3,
                                         "bypassed": 1, "stale_answers": 0, "total_requests": 9,
                                         "hit_rate_percent": 55.56, "shadow_hits": 0}
    usage = body["token_usage"]
    assert (usage["tokens_saved"], usage["tokens_saved_exact"], usage["tokens_used"]) == (
        saved_tokens, saved_tokens, used_tokens)
    assert usage["total_tokens_without_cache"] == saved_tokens + used_tokens
    assert usage["prompt_tokens"] == pa + pb + pby + pc
    cost = body["cost_analysis"]
    assert cost["cost_saved_usd"] == pytest.approx(saved_usd)
    assert cost["cost_saved_exact_usd"] == pytest.approx(saved_usd)
    assert cost["cost_spent_usd"] == pytest.approx(spent_usd)
    assert cost["total_cost_without_cache_usd"] == pytest.approx(saved_usd + spent_usd)
    assert cost["savings_percent"] == pytest.approx(100 * saved_usd / (saved_usd + spent_usd), abs=0.01)
    assert body["pricing"]["models"][MODEL] == {"input_per_1m": MINI["input"],
                                                "cached_input_per_1m": MINI["cached_input"],
                                                "output_per_1m": MINI["output"]}
    assert body["latency"]["all"]["count"] == 9
    assert body["latency"]["hits"]["count"] == 5
    assert body["latency"]["misses"]["count"] == 3
    assert body["streaming"]["completed"] == 2
    assert body["streaming"]["active"] == 0
    assert body["streaming"]["ttft"]["count"] == 2
    [model] = body["by_model"]
    assert (model["model"], model["requests"], model["exact_hits"], model["misses"], model["bypassed"],
            model["tokens_saved"]) == (MODEL, 9, 5, 3, 1, saved_tokens)
    assert body["errors"]["requests_5xx"] == 0
    # a server level's entry count is a SCAN repeated no sooner than 100 times what it took (at most a minute):
    # on a loaded machine the one taken before the stores may still be the one shown for a while
    deadline = time.monotonic() + 70
    while body["cache"]["exact"]["entries"] < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        body = httpx.get(proxy.url + "/metrics", timeout=10).json()
    assert body["cache"]["exact"]["entries"] >= 3

    prom = prometheus(proxy)
    assert sample(prom, "cachegate_http_requests_total", route=CHAT, method="POST", status="200") == 9
    assert sample(prom, "cachegate_cache_lookups_total", tier="exact", outcome="hit") == 5
    assert sample(prom, "cachegate_cache_lookups_total", tier="exact", outcome="miss") == 3
    assert sample(prom, "cachegate_cache_lookups_total", tier="all", outcome="bypass") == 1
    assert sample(prom, "cachegate_request_duration_seconds_count", cache="exact_hit") == 5
    assert sample(prom, "cachegate_request_duration_seconds_count", cache="miss") == 3
    assert sample(prom, "cachegate_request_duration_seconds_count", cache="bypass") == 1
    assert sample(prom, "cachegate_upstream_duration_seconds_count", stream="false") == 3
    assert sample(prom, "cachegate_upstream_duration_seconds_count", stream="true") == 1
    assert sample(prom, "cachegate_tokens_total", model=MODEL, kind="saved") == saved_tokens
    assert sample(prom, "cachegate_tokens_total", model=MODEL, kind="prompt") == pa + pb + pby + pc
    assert sample(prom, "cachegate_tokens_total", model=MODEL, kind="completion") == ca + cb + cby + cc
    assert sample(prom, "cachegate_cost_usd_total", model=MODEL, kind="saved") == pytest.approx(saved_usd)
    assert sample(prom, "cachegate_cost_usd_total", model=MODEL, kind="spent") == pytest.approx(spent_usd)
    assert sample(prom, "cachegate_stream_ttft_seconds_count", cache="miss") == 1
    assert sample(prom, "cachegate_stream_ttft_seconds_count", cache="exact_hit") == 1
    assert sample(prom, "cachegate_streams_total", result="completed") == 2
    assert sample(prom, "cachegate_active_streams") == 0
    assert sample(prom, "cachegate_ledger_requests") == 9
    assert sample(prom, "cachegate_ledger_tokens_saved") == saved_tokens
    assert sample(prom, "cachegate_uptime_seconds") > 0
    first_level = proxy.parts.exact.levels[0].name  # memory (in front of the disk), or redis
    assert sample(prom, "cachegate_cache_entries", tier=first_level) >= 3
    # every lookup reads the first level once (a hit just after its miss may be answered by the single flight);
    # with the semantic tier off a miss leads straight from its lookup, without reading again (proxy.chat.coalesce)
    assert sample(prom, "cachegate_cache_hits_total", tier=first_level) + \
        sample(prom, "cachegate_cache_misses_total", tier=first_level) == 8
    assert sample(prom, "cachegate_cache_evictions_total", tier=first_level, reason="size") == 0
    if first_level == "redis-local":
        # a set is an entry kept: the copy of Redis keeps no write, only promotions after a read; each one kept
        # is still held or was dropped by an announcement (which may come after it: how many, timing decides)
        level = httpx.get(proxy.url + "/metrics", timeout=10).json()["cache"]["levels"][first_level]
        assert level["sets"] >= 3 and level["sets"] == level["entries"] + level["invalidated"]
    else:
        assert sample(prom, "cachegate_cache_sets_total", tier=first_level) == 3
        assert body["cache"]["levels"][first_level]["sets"] == 3

    response = httpx.get(proxy.url + "/metrics/csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = {(row["kind"], row["name"]): row for row in csv.DictReader(io.StringIO(response.text))}
    chat_row, model_row = rows["endpoint", CHAT], rows["model", MODEL]
    for row in (chat_row, model_row):
        assert (row["requests"], row["exact_hits"], row["misses"], row["bypassed"]) == ("9", "5", "3", "1")
        assert int(row["tokens_saved"]) == saved_tokens
        assert float(row["cost_saved_usd"]) == pytest.approx(saved_usd)
        assert float(row["p50_ms"]) > 0
        assert float(row["requests_per_second"]) > 0


def test_prometheus_is_served_where_a_scrape_looks(proxy: ProxyServer) -> None:
    chat(proxy)
    url = proxy.url + "/metrics"
    plain = httpx.get(url, headers={"accept": "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"})
    assert plain.headers["content-type"].startswith("text/plain")
    assert sample(parse_prometheus(plain.text), "cachegate_ledger_requests") == 1
    stock = httpx.get(url, headers={"accept": "application/openmetrics-text;version=1.0.0;q=0.5,"
                                              "text/plain;version=0.0.4;q=0.4,*/*;q=0.1"})
    assert stock.headers["content-type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(stock.text)}
    assert families["cachegate_http_requests"].type == "counter"
    by_query = httpx.get(url + "?format=prometheus")
    assert by_query.headers["content-type"].startswith("text/plain")
    assert "cachegate_http_requests_total" in by_query.text
    assert httpx.get(url).headers["content-type"].startswith("application/json")
    assert httpx.get(url, headers={"accept": "application/json, text/plain"}).json()["cache_performance"]
    assert httpx.get(url + "?format=csv").text.startswith("kind,name,")
    bad = httpx.get(url + "?format=xml")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "format"


def test_provider_cached_tokens_are_a_saving(start_proxy: Any) -> None:
    proxy = start_proxy()
    response = chat(proxy, "a long prompt", headers={"x-sim-cached-tokens": "2"})
    prompt, completion = usage_of(response)
    assert response.parse().usage.prompt_tokens_details.cached_tokens == 2
    body = metrics_when(proxy, 1)
    assert body["token_usage"]["provider_cached_tokens"] == 2
    provider_usd = 2 * (MINI["input"] - MINI["cached_input"]) / 1e6
    assert body["cost_analysis"]["cost_saved_provider_usd"] == pytest.approx(provider_usd)
    assert body["cost_analysis"]["cost_saved_usd"] == pytest.approx(provider_usd)
    spent = ((prompt - 2) * MINI["input"] + 2 * MINI["cached_input"] + completion * MINI["output"]) / 1e6
    assert body["cost_analysis"]["cost_spent_usd"] == pytest.approx(spent)
    assert sample(prometheus(proxy), "cachegate_tokens_total", model=MODEL, kind="provider_cached") == 2


def test_unknown_models_are_priced_at_the_fallback_and_flagged(start_proxy: Any) -> None:
    proxy = start_proxy()
    prompt, completion = usage_of(chat(proxy, model="house-model-7"))
    chat(proxy, model="house-model-7")
    body = metrics_when(proxy, 2)
    assert body["pricing"]["fallback_models"] == ["house-model-7"]
    [row] = body["by_model"]
    assert row["pricing_fallback"] is True
    assert row["cost_saved_usd"] == pytest.approx((prompt * 0.59 + completion * 0.79) / 1e6)


def test_upstream_failures_are_counted_as_errors(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy()
    for status in ("500", "502"):
        response = httpx.post(proxy.base_url + "/chat/completions", json={"model": MODEL, "messages": [
            {"role": "user", "content": "hi"}]}, headers={"x-sim-status": status})
        assert response.status_code == int(status)
    body = metrics_when(proxy, 2)
    assert body["errors"]["requests_5xx"] == 2
    assert body["errors"]["by_component"] == {"proxy": {"http_500": 1}, "upstream": {"http_502": 1}}
    assert body["cache_performance"]["misses"] == 2
    prom = prometheus(proxy)
    assert sample(prom, "cachegate_errors_total", component="upstream", type="http_502") == 1
    assert sample(prom, "cachegate_http_requests_total", route=CHAT, method="POST", status="500") == 1
