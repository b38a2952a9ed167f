"""``/probe/api/*`` after a real cycle: every route answers exactly the stored data (recomputed here from the
stored requests and the simulator's truth), bad query values get a 400 naming them, the guards hold, and
the Prometheus metrics say the same."""

from __future__ import annotations

from collections.abc import Iterator
from statistics import mean, median
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.probe.conftest import StartMonitor
from tests.integration.probe.helpers import advance, api, cycle_done, scheduler, truth, wait_for
from tests.support.cache_profiles import PROFILES
from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

MODELS = ("sim-openai", "sim-llama")
PRICES = {"input": 1.0, "cached": 0.1, "output": 2.0}  # what the simulator's /models advertises


@pytest.fixture
def ran(start_monitor: StartMonitor, psim: SimulatorServer) -> Iterator[tuple[ProxyServer, dict[str, Any],
                                                                             list[dict[str, Any]]]]:
    proxy = start_monitor(probe_models=MODELS)
    cycle = cycle_done(proxy)
    rows = api(proxy, "results", limit=1000)["results"]
    yield proxy, cycle, rows


def of(rows: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["model"] == model]


def cache_rate(rows: list[dict[str, Any]]) -> float:
    return round(mean(r["cached_tokens"] / r["prompt_tokens"] for r in rows if r["role"] == "repeat"), 4)


def cost(row: dict[str, Any]) -> float:
    cached = row["cached_tokens"] or 0
    return ((row["prompt_tokens"] - cached) * PRICES["input"] + cached * PRICES["cached"]
            + row["completion_tokens"] * PRICES["output"]) / 1e6


def test_results_are_the_requests_made(ran: Any, psim: SimulatorServer) -> None:
    proxy, _cycle, rows = ran
    done = {f"sim-{t['seq']}": t for t in truth(psim)}
    assert len(rows) == len(done) == 8
    for row in rows:
        seen = done[row["upstream_request_id"]]
        assert (row["prompt_tokens"], row["cached_tokens"]) == (seen["prompt_tokens"], seen["cached_tokens"])
        assert row["write_tokens"] is None  # the OpenAI shape does not report writes: unknown, not 0
        assert row["cost_usd"] == pytest.approx(cost(row))
        assert row["saved_usd"] == pytest.approx((row["cached_tokens"] or 0) * 0.9 / 1e6)
        assert row["raw_usage"]["prompt_tokens"] == seen["prompt_tokens"]
    assert [r["ts"] for r in rows] == sorted((r["ts"] for r in rows), reverse=True)  # newest first
    llama = api(proxy, "results", model="sim-llama", test="basic")["results"]
    assert llama == of(rows, "sim-llama")
    two = api(proxy, "results", limit=2)
    assert (two["count"], two["results"]) == (2, rows[:2])
    middle = rows[2:5]
    window = api(proxy, "results", **{"from": middle[-1]["ts"], "to": rows[1]["ts"]})["results"]
    assert window == middle
    export = httpx.get(proxy.url + "/probe/api/results", params={"format": "jsonl"})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert [orjson.loads(line) for line in export.content.splitlines()] == rows[::-1]  # all, oldest first


def test_models_stats_and_sparklines_are_the_stored_figures(ran: Any) -> None:
    proxy, cycle, rows = ran
    models = {m["model"]: m for m in api(proxy, "models")["models"]}
    history = {m: api(proxy, f"model/{m}/history")["verdicts"] for m in MODELS}
    assert [len(h) for h in history.values()] == [1, 1]
    for name, verdict, hit, provider in (("sim-openai", "caches", 1.0, "OpenAI"), ("sim-llama", "no_caching", 0.0,
                                                                                    "Meta")):
        model, mine, [stored] = models[name], of(rows, name), history[name]
        assert (model["verdict"], model["hit_ratio"], model["provider"]) == (verdict, hit, provider)
        assert model["cache_rate"] == stored["cache_rate"] == cache_rate(mine)
        assert model["tokens_spent"] == stored["tokens_spent"] == sum(r["prompt_tokens"] + r["completion_tokens"]
                                                                      for r in mine)
        assert model["cost_usd"] == pytest.approx(sum(cost(r) for r in mine))
        assert (model["since"], model["last_run"]) == (stored["ts"], stored["ts"])
        assert (model["advertised_cache_price"], model["input_price"], model["saving_per_1m_cached_usd"]) == (
            0.1, 1.0, 0.9)
        repeats = [r for r in mine if r["role"] == "repeat"]
        assert model["stats"] == {
            "requests": 4, "errors": 0, "repeats": 3, "hits": sum(r["cached_tokens"] > 0 for r in repeats),
            "prompt_tokens": sum(r["prompt_tokens"] for r in mine), "cached_tokens": sum(r["cached_tokens"]
                                                                                        for r in mine),
            "avg_latency": round(mean(r["latency"] for r in mine), 4), "avg_ttft": None,
            "saved_usd": round(sum(r["saved_usd"] for r in mine), 8),
            "cost_usd": round(sum(r["cost_usd"] for r in mine), 8), "last_success": max(r["ts"] for r in mine),
            "hit_rate": hit, "cached_share": round(sum(r["cached_tokens"] for r in mine)
                                                   / sum(r["prompt_tokens"] for r in mine), 4)}
    assert models["sim-llama"]["drift"] == "advertised_not_observed"
    stats = api(proxy, "stats")
    assert {k: stats[k] for k in ("models_tested", "caching_models", "mean_cache_rate", "last_run")} == {
        "models_tested": 2, "caching_models": 1, "mean_cache_rate": round(cache_rate(of(rows, "sim-openai")) / 2, 4),
        "last_run": max(h[0]["ts"] for h in history.values())}
    assert stats["last_cycle"] == cycle
    assert stats["health"]["status"] == "degraded"
    assert stats["health"]["reasons"] == ["sim-llama: advertises a cached-input price, but does not cache"]
    lines = api(proxy, "sparklines")
    assert lines == {"runs": 10, "models": {m: [{"ts": history[m][0]["ts"], "cache_rate": history[m][0]["cache_rate"],
                                                  "verdict": history[m][0]["verdict"]}] for m in sorted(MODELS)}}


def test_history_usage_scheduler_and_health(ran: Any) -> None:
    proxy, cycle, rows = ran
    rates = [cache_rate(of(rows, m)) for m in MODELS]
    history = api(proxy, "history", bucket="day")
    [point] = history["series"]
    assert (point["runs"], point["caching"], point["cache_rate"]) == (2, 1, round(mean(rates), 4))
    assert set(history["models"]) == set(MODELS)
    usage = api(proxy, "usage")
    [day] = usage["days"]
    prompt, cached = sum(r["prompt_tokens"] for r in rows), sum(r["cached_tokens"] for r in rows)
    completion = sum(r["completion_tokens"] for r in rows)
    assert (day["requests"], day["prompt_tokens"], day["cached_tokens"], day["completion_tokens"]) == (
        8, prompt, cached, completion)
    assert day["savings_percent"] == round(100 * cached / prompt, 2)
    assert usage["totals"]["tokens"] == cycle["tokens"] == prompt + completion
    assert usage["daily_average"]["requests"] == 8.0
    state = scheduler(proxy)
    assert (state["leader"], state["running"], state["last_cycle"]) == (True, False, cycle)
    assert state["budget"]["tokens"]["spent_today"] == cycle["tokens"]
    newest = rows[0]
    assert (state["balance"]["usd"], state["balance"]["diem"]) == (newest["balance_usd"], newest["balance_diem"])
    assert state["leadership"]["mode"] == "single process (no REDIS_URL)"
    health = api(proxy, "health")
    assert (health["status"], health["leader"], health["last_cycle"]) == ("degraded", True, cycle)


def test_prometheus_exports_the_latest_verdicts(ran: Any) -> None:
    proxy, _cycle, rows = ran
    models = {m["model"]: m for m in api(proxy, "models")["models"]}
    text = httpx.get(proxy.url + "/metrics/prometheus").text
    lines = set(text.splitlines())
    assert 'cachegate_probe_verdict{model="sim-openai",verdict="caches"} 1.0' in lines
    assert 'cachegate_probe_verdict{model="sim-openai",verdict="no_caching"} 0.0' in lines
    assert 'cachegate_probe_verdict{model="sim-llama",verdict="no_caching"} 1.0' in lines
    assert f'cachegate_probe_cache_ratio{{model="sim-openai"}} {models["sim-openai"]["cache_rate"]}' in lines
    assert 'cachegate_probe_requests_total{model="sim-openai",status="200"} 4.0' in lines
    prompt = float(sum(r["prompt_tokens"] for r in of(rows, "sim-openai")))
    assert f'cachegate_probe_tokens_total{{kind="prompt",model="sim-openai"}} {prompt}' in lines
    success = max(r["ts"] for r in api(proxy, "model/sim-llama/history")["verdicts"])
    assert any(line.startswith('cachegate_probe_last_success_timestamp_seconds{model="sim-llama"}')
               and float(line.split()[-1]) == pytest.approx(success) for line in lines)
    assert not any(line.startswith("cachegate_probe_errors_total{") for line in lines)  # nothing failed


def prometheus(proxy: ProxyServer) -> dict[str, float]:
    """Every sample of the probe's families, ``name{labels}`` -> value."""
    text = httpx.get(proxy.url + "/metrics/prometheus").text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("cachegate_probe_"))
    return {name: float(value) for name, value in samples}


def test_prometheus_exports_the_measured_figures(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    """Minimum prefix, TTL bracket and speed-up after a run that measured them: exactly the stored figures, which
    are the simulator's (its latency model gives the speed-up; its profile the minimum and the TTL)."""
    proxy = start_monitor(probe_models=("sim-openai",), probe_tests=("basic", "sizes", "latency", "ttl"),
                          probe_ttl_range=(300.0, 600.0))
    cycle_done(proxy)
    while (model := api(proxy, "models")["models"][0])["ttl_status"] == "measuring":
        now = httpx.get(psim.url + "/_clock").json()["now"]
        advance(psim, max(0.0, model["ttl_due"] - now))
        wait_for(lambda due=model["ttl_due"]: api(proxy, "models")["models"][0]["ttl_due"] != due
                 and not scheduler(proxy)["ttl"]["busy"], "the due TTL step to be taken")
    profile = PROFILES["sim-openai"]  # minimum 1024, step 128, TTL 420 s
    minimum, (lower, upper), speedup = model["min_prefix_tokens"], model["ttl_seconds"], model["speedup"]
    assert profile.min_prefix <= minimum < profile.min_prefix + profile.step
    assert lower < profile.ttl <= upper
    done = {f"sim-{t['seq']}": t for t in truth(psim, "sim-openai")}
    latency = api(proxy, "results", model="sim-openai", test="latency", limit=1000)["results"]
    cold = [done[r["upstream_request_id"]]["ttft"] for r in latency if r["role"] == "prime"]
    warm = [done[r["upstream_request_id"]]["ttft"] for r in latency if r["role"] == "repeat"]
    assert speedup == pytest.approx(median(cold) / median(warm), abs=1e-3)
    samples = prometheus(proxy)
    assert samples['cachegate_probe_min_prefix_tokens{model="sim-openai"}'] == float(minimum)
    assert samples['cachegate_probe_ttl_seconds{bound="lower",model="sim-openai"}'] == lower
    assert samples['cachegate_probe_ttl_seconds{bound="upper",model="sim-openai"}'] == upper
    assert samples['cachegate_probe_speedup{model="sim-openai"}'] == speedup


def test_prometheus_counts_a_failing_probe_request(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    # a wrong base path: the simulator answers every probe request 404 ("no route")
    proxy = start_monitor(probe_upstream_url=psim.url + "/nowhere")
    cycle_done(proxy)
    rows = api(proxy, "results", limit=1000)["results"]
    assert rows and {r["status"] for r in rows} == {404}
    samples = prometheus(proxy)
    assert samples['cachegate_probe_errors_total{model="sim-openai",type="http_4xx"}'] == float(len(rows))
    assert samples['cachegate_probe_requests_total{model="sim-openai",status="404"}'] == float(len(rows))
    assert not any(name.startswith("cachegate_probe_errors_total{") and "http_4xx" not in name for name in samples)


@pytest.mark.parametrize(("path", "params", "named"), [
    ("results", {"limit": "0"}, "limit"), ("results", {"limit": "lots"}, "limit"),
    ("results", {"format": "xml"}, "format"), ("results", {"from": "yesterday"}, "from"),
    ("results", {"test": "everything"}, "test"), ("results", {"source": "elsewhere"}, "source"),
    ("results", {"modle": "sim-openai"}, "modle"), ("results", {"from": "200", "to": "100"}, "from"),
    ("results", {"limit": "0", "to": "later"}, "limit,to"),
    ("history", {"bucket": "week"}, "bucket"), ("history", {"to": "soon"}, "to"), ("usage", {"from": "x"}, "from"),
    ("model/sim-openai/history", {"limit": "5000"}, "limit"), ("stats", {"verbose": "1"}, "verbose"),
    ("models", {"provider": "OpenAI"}, "provider"), ("scheduler", {"x": ""}, "x"),
])
def test_bad_query_values_get_a_400_naming_them(start_monitor: StartMonitor, path: str, params: dict[str, str],
                                                named: str) -> None:
    proxy = start_monitor()
    response = httpx.get(proxy.url + "/probe/api/" + path, params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (set(error["param"].split(",")), error["code"], error["type"]) == (set(named.split(",")), "invalid_query",
                                                                             "invalid_request_error")
    for name in named.split(","):
        assert f"'{name}'" in error["message"]


def test_unknown_models_are_404(ran: Any, psim: SimulatorServer) -> None:
    proxy, _, _ = ran
    sent = len(truth(psim))
    for path in ("test/no-such-model", "compare/sim-openai/no-such-model", "model/no-such-model/history"):
        response = httpx.get(proxy.url + "/probe/api/" + path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "model_not_found"
    assert len(truth(psim)) == sent  # nothing was sent upstream


def test_the_guards(start_monitor: StartMonitor) -> None:
    proxy = start_monitor(monitor_api_key="mon-1", admin_api_key="adm-1")
    cycle = cycle_done(proxy, key="mon-1")
    assert httpx.get(proxy.url + "/probe/api/stats").status_code == 401
    assert httpx.get(proxy.url + "/probe/api/stats", headers={"x-api-key": "mon-1"}).status_code == 200
    assert httpx.post(proxy.url + "/probe/api/run", headers={"x-api-key": "mon-1"}).status_code == 401
    started = httpx.post(proxy.url + "/probe/api/run", headers={"authorization": "Bearer adm-1"})
    assert started.status_code == 202, started.text
    body = started.json()
    assert (body["started"], body["cycle"]["trigger"], body["cycle"]["status"]) == (True, "manual", "running")
    manual = cycle_done(proxy, cycle["id"], key="mon-1")
    assert (manual["id"], manual["trigger"], manual["status"]) == (body["cycle"]["id"], "manual", "completed")
