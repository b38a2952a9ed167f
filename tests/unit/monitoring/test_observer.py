"""The observer turns request records into exact counters: ledger, Prometheus, JSON report.

The semantic tier is exercised here by feeding records directly (outcome ``semantic_hit``, shadow hits,
lookups on tier ``semantic`` and ``embedding``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.monitoring.kinds import normalize_route
from proxy.monitoring.ledger import GLOBAL
from proxy.monitoring.observer import MonitoringObserver
from proxy.monitoring.report import Report
from proxy.monitoring.request_log import RequestLog
from tests.support.usage_shapes import SHAPES, render_usage
from tests.unit.monitoring.support import make_observer, record, usage

MINI_IN, MINI_OUT, MINI_CACHED = 0.15, 0.6, 0.075  # gpt-4o-mini, USD per 1M tokens


def prom(observer: MonitoringObserver, name: str, **labels: str) -> float:
    value = observer.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def glob(observer: MonitoringObserver) -> dict[str, float]:
    observer.fold()
    return {name: value for (scope, name), value in observer.ledger.totals().items() if scope == GLOBAL}


def test_hits_of_both_kinds_save_tokens_and_dollars() -> None:
    obs = make_observer()
    obs.request_done(record("miss", usage=usage(100, 50)))
    for _ in range(3):
        obs.request_done(record("exact_hit", usage=usage(100, 50)))
    for _ in range(2):
        obs.request_done(record("semantic_hit", usage=usage(40, 10), similarity=0.95))

    totals = glob(obs)
    assert totals["requests"] == 6
    assert (totals["exact_hits"], totals["semantic_hits"], totals["misses"]) == (3, 2, 1)
    assert totals["tokens_saved"] == 3 * 150 + 2 * 50
    assert totals["tokens_saved_exact"] == 450
    assert totals["tokens_saved_semantic"] == 100
    assert totals["tokens_used"] == 150
    exact_usd = 3 * (100 * MINI_IN + 50 * MINI_OUT) / 1e6
    semantic_usd = 2 * (40 * MINI_IN + 10 * MINI_OUT) / 1e6
    assert totals["cost_saved_exact_usd"] == pytest.approx(exact_usd)
    assert totals["cost_saved_semantic_usd"] == pytest.approx(semantic_usd)
    assert totals["cost_saved_usd"] == pytest.approx(exact_usd + semantic_usd)
    assert totals["cost_spent_usd"] == pytest.approx((100 * MINI_IN + 50 * MINI_OUT) / 1e6)

    assert prom(obs, "cachegate_tokens_total", model="gpt-4o-mini", kind="saved") == 550
    assert prom(obs, "cachegate_tokens_total", model="gpt-4o-mini", kind="prompt") == 100
    assert prom(obs, "cachegate_tokens_total", model="gpt-4o-mini", kind="completion") == 50
    assert prom(obs, "cachegate_cost_usd_total", model="gpt-4o-mini", kind="saved") == pytest.approx(
        exact_usd + semantic_usd)
    assert prom(obs, "cachegate_request_duration_seconds_count", cache="semantic_hit") == 2
    assert prom(obs, "cachegate_http_requests_total", route="/v1/chat/completions", method="POST",
                status="200") == 6


def test_provider_prompt_caching_is_a_third_saving() -> None:
    obs = make_observer()
    obs.request_done(record("miss", usage=usage(2048, 10, cached=1024)))
    totals = glob(obs)
    provider = 1024 * (MINI_IN - MINI_CACHED) / 1e6
    assert totals["provider_cached_tokens"] == 1024
    assert totals["cost_saved_provider_usd"] == pytest.approx(provider)
    assert totals["cost_saved_usd"] == pytest.approx(provider)
    assert totals["cost_spent_usd"] == pytest.approx((1024 * MINI_IN + 1024 * MINI_CACHED + 10 * MINI_OUT) / 1e6)
    assert prom(obs, "cachegate_tokens_total", model="gpt-4o-mini", kind="provider_cached") == 1024


def test_lookups_shadow_hits_embeddings_and_bypass() -> None:
    obs = make_observer()
    obs.cache_lookup("exact", "miss", 0.001)
    obs.cache_lookup("semantic", "miss", 0.004)
    obs.cache_lookup("semantic", "shadow_hit", 0.004)  # counted from the record instead
    obs.cache_lookup("embedding", "ok", 0.003)
    obs.cache_lookup("exact", "error", 0.25)
    obs.request_done(record("miss", shadow_hit=True, similarity=0.93, usage=usage(10, 5)))
    obs.request_done(record("bypass", usage=usage(10, 5)))

    assert prom(obs, "cachegate_cache_lookups_total", tier="exact", outcome="miss") == 1
    assert prom(obs, "cachegate_cache_lookups_total", tier="exact", outcome="error") == 1
    assert prom(obs, "cachegate_cache_lookups_total", tier="semantic", outcome="miss") == 1
    assert prom(obs, "cachegate_cache_lookups_total", tier="semantic", outcome="shadow_hit") == 1
    assert prom(obs, "cachegate_cache_lookups_total", tier="all", outcome="bypass") == 1
    assert prom(obs, "cachegate_cache_lookup_duration_seconds_count", tier="semantic") == 2
    assert prom(obs, "cachegate_embedding_duration_seconds_count") == 1
    totals = glob(obs)
    assert (totals["shadow_hits"], totals["misses"], totals["bypassed"], totals["requests"]) == (1, 1, 1, 2)
    assert totals["tokens_used"] == 30


def test_errors_by_component_and_type() -> None:
    obs = make_observer()
    obs.backend_error("redis", TimeoutError("slow"))
    obs.backend_error("redis", TimeoutError("slow"))
    obs.request_done(record("miss", status=502))
    obs.request_done(record("none", status=400))
    obs.request_done(record("miss", status=200, stream=True, stream_failed=True))
    assert prom(obs, "cachegate_errors_total", component="redis", type="TimeoutError") == 2
    assert prom(obs, "cachegate_errors_total", component="upstream", type="http_502") == 1
    assert prom(obs, "cachegate_errors_total", component="stream", type="interrupted") == 1
    assert prom(obs, "cachegate_streams_total", result="failed") == 1
    report = Report(obs).json(cache_usage={}, components={}, ledger_backend="memory")
    assert report["errors"]["requests_5xx"] == 1
    assert report["errors"]["requests_4xx"] == 1
    assert report["errors"]["stream_failures"] == 1
    assert report["errors"]["by_component"] == {"redis": {"TimeoutError": 2}, "upstream": {"http_502": 1}}
    assert report["cache_performance"]["misses"] == 2  # the 400 never reached the cache


def test_streams_ttft_and_tokens_per_second() -> None:
    obs = make_observer()
    obs.request_done(record("miss", stream=True, ttft=0.1, duration=1.1, usage=usage(10, 200)))
    obs.request_done(record("exact_hit", stream=True, ttft=0.002, duration=0.003, usage=usage(10, 200)))
    assert prom(obs, "cachegate_stream_ttft_seconds_count", cache="miss") == 1
    assert prom(obs, "cachegate_stream_ttft_seconds_sum", cache="miss") == pytest.approx(0.1)
    assert prom(obs, "cachegate_stream_tokens_per_second_sum", cache="miss") == pytest.approx(200.0)
    assert prom(obs, "cachegate_streams_total", result="completed") == 2
    streaming = Report(obs).json(cache_usage={}, components={}, ledger_backend="memory")["streaming"]
    assert streaming["completed"] == 2
    assert streaming["ttft"]["count"] == 2
    assert streaming["ttft_misses"]["p50"] == 100.0
    assert streaming["tokens_per_second"] == {"count": 1, "p50": 200.0, "p90": 200.0, "p99": 200.0, "avg": 200.0,
                                              "min": 200.0, "max": 200.0}


def test_report_shape_and_numbers() -> None:
    obs = make_observer()
    for duration in (0.010, 0.020, 0.030):
        obs.request_done(record("miss", duration=duration, usage=usage(100, 50)))
    obs.request_done(record("exact_hit", duration=0.001, usage=usage(100, 50)))
    obs.request_done(record("miss", model="mystery-model", duration=0.040, usage=usage(1000, 0)))
    report = Report(obs).json(cache_usage={"exact": {"entries": 3, "bytes": 10}}, components={},
                              ledger_backend="memory")
    assert report["cache_performance"] == {"exact_hits": 1, "semantic_hits": 0, "total_hits": 1, "misses": 4,
                                           "bypassed": 0, "stale_answers": 0, "total_requests": 5,
                                           "hit_rate_percent": 20.0, "shadow_hits": 0}
    assert report["token_usage"]["tokens_saved"] == 150
    assert report["token_usage"]["tokens_used"] == 3 * 150 + 1000
    assert report["token_usage"]["total_tokens_without_cache"] == 150 + 1450
    cost = report["cost_analysis"]
    assert cost["total_cost_without_cache_usd"] == pytest.approx(cost["cost_saved_usd"] + cost["cost_spent_usd"])
    assert cost["savings_percent"] == round(100 * cost["cost_saved_usd"] / cost["total_cost_without_cache_usd"], 2)
    assert report["latency"]["misses"]["p50"] == 20.0
    assert report["latency"]["hits"]["max"] == 1.0
    assert report["latency"]["all"]["count"] == 5
    assert report["pricing"]["fallback_models"] == ["mystery-model"]
    models = {row["model"]: row for row in report["by_model"]}
    assert models["mystery-model"]["pricing_fallback"] is True
    assert models["mystery-model"]["cost_spent_usd"] == pytest.approx(1000 * 0.59 / 1e6)
    assert models["gpt-4o-mini"]["requests"] == 4
    assert models["gpt-4o-mini"]["exact_hits"] == 1
    assert report["cache"] == {"exact": {"entries": 3, "bytes": 10}}


def test_csv_rows_per_endpoint_and_model() -> None:
    obs = make_observer()
    obs.request_done(record("miss", usage=usage(100, 50)))
    obs.request_done(record("exact_hit", usage=usage(100, 50)))
    obs.request_done(record("none", model=None, route="/v1/models", status=200))
    lines = Report(obs).csv().splitlines()
    header = lines[0].split(",")
    rows = {tuple(line.split(",")[:2]): dict(zip(header, line.split(","), strict=True)) for line in lines[1:]}
    assert set(rows) == {("endpoint", "/v1/chat/completions"), ("endpoint", "/v1/models"), ("model", "gpt-4o-mini")}
    chat = rows["endpoint", "/v1/chat/completions"]
    assert (chat["requests"], chat["exact_hits"], chat["misses"], chat["tokens_saved"]) == ("2", "1", "1", "150")
    model = rows["model", "gpt-4o-mini"]
    assert (model["requests"], model["hit_rate_percent"], model["prompt_tokens"]) == ("2", "50.0", "100")


def test_a_broken_record_is_swallowed() -> None:
    obs = make_observer()
    broken = record("miss", usage={"prompt_tokens": "lots"})
    obs.request_done(broken)
    obs.request_done(record("miss", model="gpt-4o-mini", usage=None))
    assert glob(obs)["misses"] == 2
    obs.request_done(None)  # type: ignore[arg-type]  # never raises


@pytest.mark.parametrize(("path", "label"), [
    ("/v1/chat/completions", "/v1/chat/completions"),
    ("/v1/models/gpt-4o", "/v1/models/{id}"),
    ("/v1/files/file-abc123/content", "/v1/files/{id}/content"),
    ("/metrics/usage", "/metrics/usage"),
    ("/", "/"),
    ("/a/b/c/d/e/f", "/a/b/c/d/…"),
])
def test_route_labels_are_bounded(path: str, label: str) -> None:
    assert normalize_route(path) == label


def test_route_and_model_cardinality_is_capped() -> None:
    obs = make_observer()
    labels = {obs.route_label(f"/x{'a' * (i % 26)}{chr(97 + i % 26)}/{'b' * (i // 26)}") for i in range(600)}
    assert "other" in labels
    assert len(labels) == 201
    models = {obs.model_label(f"model-{i}") for i in range(600)}
    assert len(models) == 501


def test_only_a_model_that_was_answered_claims_a_label_and_a_price() -> None:
    # issue 10.17: 600 made-up names the upstream refused must not take the 500 labels from real models
    obs = make_observer()
    for i in range(600):
        obs.request_done(record(model=f"made-up-{i}", status=404))
    obs.request_done(record(model="gpt-4o-mini", usage=usage(10, 5)))
    obs.request_done(record(model="made-up-7", status=404))
    obs.fold()
    assert prom(obs, "cachegate_tokens_total", model="gpt-4o-mini", kind="prompt") == 10
    assert obs.model_label("gpt-4o-mini") == "gpt-4o-mini"
    assert obs.model_label("made-up-7", claim=False) == "other"
    assert obs.pricing.fallbacks == set()  # nothing was priced for the refused names
    totals = obs.ledger.totals()
    assert totals[("model:other", "requests")] == 601
    assert not any(scope.startswith("model:made-up") for scope, _ in totals)


def test_the_request_log_line_escapes_the_model(tmp_path: Path) -> None:
    log = RequestLog(str(tmp_path / "requests.log"))
    obs = make_observer(request_log=log)
    obs.request_done(record(model="a\nb\u202ec", usage=usage(1, 1)))
    obs.fold()
    [tail] = log._buffer[1::2]
    assert tail.count("\n") == 1 and tail.endswith("\n")  # one line, whatever the model holds
    assert tail.split(" | ")[2].strip() == "a\\nb\\u202ec"


def test_active_streams_and_a_replayed_hits_first_byte() -> None:
    obs = make_observer()
    hit = record("exact_hit", stream=True, usage=usage(10, 20))
    miss = record("miss", stream=True)
    plain = record("exact_hit")
    for started in (hit, miss, plain):
        obs.response_started(started)
    assert obs.active_streams == 2
    assert hit.ttft is not None and hit.ttft >= 0
    assert miss.ttft is None  # a miss's first byte is measured when the upstream's arrives
    assert plain.ttft is None
    obs.request_done(hit)
    assert obs.active_streams == 1
    assert prom(obs, "cachegate_active_streams") == 1
    obs.request_done(miss)
    obs.request_done(record("miss", stream=True))  # never started (the client went away): no underflow
    assert obs.active_streams == 0


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "none"])
def test_provider_cached_tokens_are_counted_in_every_usage_shape(shape: str) -> None:
    obs = make_observer()
    obs.request_done(record("miss", usage=render_usage(shape, prompt=2048, completion=10, cached=1024, written=512)))
    totals = glob(obs)
    assert totals["provider_cached_tokens"] == 1024
    assert totals["prompt_tokens"] == 2048
    assert totals["completion_tokens"] == 10
    assert totals["cost_saved_provider_usd"] == pytest.approx(1024 * (MINI_IN - MINI_CACHED) / 1e6)


def test_no_cache_field_adds_no_provider_cached_tokens() -> None:
    obs = make_observer()
    obs.request_done(record("miss", usage=render_usage("none", prompt=2048, completion=10, cached=1024)))
    totals = glob(obs)
    assert totals["prompt_tokens"] == 2048
    assert totals.get("provider_cached_tokens", 0) == 0


def test_events_fold_inline_once_fold_at_of_them_wait() -> None:
    """Under load the observer folds every FOLD_AT events itself, so no fold job ever meets a batch big enough
    to hold the event loop for long; below that the events wait for the job (or a read of the numbers)."""
    obs = make_observer()
    for _ in range(MonitoringObserver.FOLD_AT - 1):
        obs.request_done(record("exact_hit", usage=usage(100, 50)))
    # (the ledger's totals, unlike a read of the metrics, do not fold what is waiting)
    assert obs.ledger.totals().get((GLOBAL, "requests"), 0) == 0
    obs.request_done(record("exact_hit", usage=usage(100, 50)))
    assert obs.ledger.totals()[(GLOBAL, "requests")] == MonitoringObserver.FOLD_AT
