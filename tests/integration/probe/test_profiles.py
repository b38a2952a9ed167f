"""``cachegate probe --json`` against the simulator: every profile's verdict and figures equal its truth.

The CLI runs once for every profiled model (full tests, the simulator's fake clock, so the TTL searches
over an hour take seconds); each test then checks one profile's JSON against the profile (what the
simulator was set up to do) and ``GET /_truth`` (what it did, request by request, joined on the upstream
request id every exchange records).
"""

from __future__ import annotations

import io
import itertools
import statistics
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from proxy.probe.cli import main as probe_main
from tests.support.cache_profiles import PROFILES
from tests.support.servers import SimulatorServer
from tests.support.sim_clock import SimHttpClock
from tests.support.usage_shapes import SHAPES

VERDICTS = {  # model -> (verdict, hint)
    "sim-openai": ("caches", None), "sim-deepseek": ("caches", None), "sim-kimi": ("caches", None),
    "sim-vllm": ("caches", None), "sim-claude": ("needs_hint", "cache_control"),
    "sim-grok": ("routing_limited", "x-grok-conv-id"), "sim-routed": ("routing_limited", "prompt_cache_key"),
    "sim-scattered": ("routing_limited", "prompt_cache_key"), "sim-retained": ("needs_hint", "prompt_cache_retention"),
    "sim-stream-blind": ("caches", None), "sim-stream-stale": ("caches", None),
    "sim-delayed": ("caches", None), "sim-llama": ("no_caching", None), "sim-nocache": ("no_caching", None),
    "sim-silent": ("unknown", None), "sim-usageless": ("unknown", None), "sim-glm": ("caches", None),
    **{f"sim-shape-{shape}": ("unknown", None) if shape == "none" else ("caches", None) for shape in SHAPES},
}
CACHING = [name for name, (verdict, _) in VERDICTS.items() if verdict not in ("no_caching", "unknown")]
MEASURED = [name for name in CACHING if name != "sim-glm"]  # sim-glm is contaminated: its figures are flagged
SEMANTICS = {"prefix": "prefix", "units": "units", "marks": "marks"}
STREAM_BROKEN = ("sim-stream-blind", "sim-stream-stale")  # their streams do not report what their plain answers do


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], SimulatorServer]]:
    with SimulatorServer(catalog="profiles") as sim:
        clock = SimHttpClock(sim.url)
        out, err = io.StringIO(), io.StringIO()
        environ = {"PROBE_UPSTREAM_URL": sim.base_url, "PROBE_MODELS": "all"}
        code = probe_main(["--json"], environ=environ, clock=clock, stdout=out, stderr=err)
        assert code == 0, err.getvalue()
        reports = {report["model"]: report for report in orjson.loads(out.getvalue())}
        truth = httpx.get(sim.url + "/_truth").json()
        clock.close()
        yield reports, truth, sim


def _truth_of(truth: list[dict[str, Any]], exchange: dict[str, Any]) -> dict[str, Any]:
    seq = int(exchange["upstream_request_id"].removeprefix("sim-"))
    return truth[seq - 1]


def _evidence(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [ex for test in report["tests"].values() for ex in test["evidence"]]


def test_every_text_model_is_reported_with_its_verdict(run: Any) -> None:
    reports, _, _ = run
    assert set(reports) == set(PROFILES)  # all = the text models of /models: not the embedding model
    assert {model: (r["verdict"], r["hint"]) for model, r in reports.items()} == VERDICTS


@pytest.mark.parametrize("model", sorted(PROFILES))
def test_every_answer_is_what_the_simulator_did(run: Any, model: str) -> None:
    reports, truth, _ = run
    profile = PROFILES[model]
    evidence = _evidence(reports[model])
    assert evidence
    for ex in evidence:
        if ex["status"] != 200:
            continue
        done = _truth_of(truth, ex)
        assert done["model"] == model
        assert ex["host"] == f"sim-server-{done['server']}"
        if profile.plain_usage == "missing" or (ex["stream"] and profile.stream_usage == "missing"):
            assert (ex["prompt_tokens"], ex["cached_tokens"]) == (None, None)  # absent is unknown, never 0
            assert ex["estimated_tokens"] >= done["prompt_tokens"] + 1  # charged an estimate that errs high
            continue
        assert ex["estimated_tokens"] == 0
        assert ex["prompt_tokens"] == done["prompt_tokens"]
        if profile.usage_shape == "none":
            assert ex["cached_tokens"] is None  # absent is unknown, never 0
        elif ex["stream"] and profile.stream_usage == "uncached":
            assert ex["cached_tokens"] == 0
        else:
            assert ex["cached_tokens"] == done["cached_tokens"]
    spent = sum(t["prompt_tokens"] + 1 for t in truth if t["model"] == model)
    report = reports[model]
    if profile.stream_usage != "missing":
        assert (report["tokens_spent"], report["tokens_estimated"]) == (spent, 0)
    else:  # answers without usage are charged estimates, never 0: the spend errs high, never low
        assert report["tokens_spent"] >= spent and report["tokens_estimated"] > 0


@pytest.mark.parametrize("model", MEASURED)
def test_minimum_step_ttl_refresh_and_semantics(run: Any, model: str) -> None:
    report, profile = run[0][model], PROFILES[model]
    assert profile.min_prefix <= report["min_prefix_tokens"] < profile.min_prefix + profile.step
    assert report["step_tokens"] == profile.step
    lower, upper = report["ttl_seconds"]
    assert lower < profile.ttl <= upper
    assert report["refresh_on_hit"] is profile.refresh_on_hit
    assert report["unit_semantics"] == SEMANTICS[profile.matching]
    assert report["stream_parity"] is (model not in STREAM_BROKEN)
    assert report["contaminated"] is False
    assert report["hit_ratio"] == 1.0


@pytest.mark.parametrize("model", [m for m in MEASURED if m != "sim-stream-stale"])  # its streams never hit
def test_speedup_is_the_simulators_latency_model(run: Any, model: str) -> None:
    reports, truth, _ = run
    latency = reports[model]["tests"]["latency"]["evidence"]
    cold = [_truth_of(truth, ex)["ttft"] for ex in latency if ex["role"] == "prime"]
    warm = [_truth_of(truth, ex)["ttft"] for ex in latency if ex["role"] == "repeat"]
    assert reports[model]["speedup"] == pytest.approx(statistics.median(cold) / statistics.median(warm), abs=1e-3)
    assert reports[model]["speedup"] > 1


def test_every_usage_shape_gives_the_same_figures(run: Any) -> None:
    reports = run[0]
    keys = ("verdict", "min_prefix_tokens", "step_tokens", "ttl_seconds", "refresh_on_hit", "unit_semantics",
            "stream_parity", "speedup", "hit_ratio")
    expected = {key: reports["sim-openai"][key] for key in keys}
    for shape in SHAPES:
        if shape != "none":
            assert {key: reports[f"sim-shape-{shape}"][key] for key in keys} == expected, shape


@pytest.mark.parametrize("model", ["sim-shape-none", "sim-silent", "sim-usageless"])
def test_no_cache_field_is_unknown_never_zero(run: Any, model: str) -> None:
    report = run[0][model]
    assert report["verdict"] == "unknown"
    assert report["hit_ratio"] is None
    assert report["min_prefix_tokens"] is None
    assert all(ex["cached_tokens"] is None for ex in _evidence(report))
    assert report["tests"]["sizes"]["skipped"] == "the upstream reports no cache field"
    assert report["speedup"] > 1  # it does cache: the latency says so, and the notes tell
    assert any("faster" in note for note in report["notes"])


def test_routing_limited_models(run: Any) -> None:
    reports, truth, _ = run
    for model in ("sim-grok", "sim-routed"):
        persistence = reports[model]["tests"]["persistence"]
        figures = persistence["figures"]
        assert figures["routing_limited"] is True
        assert 0 < figures["hit_ratio_without_hint"] < 0.9
        assert figures["hit_ratio_with_hint"] == 1.0
        assert figures["servers_estimate"] == figures["hosts_seen"] == PROFILES[model].servers
        pinned = [_truth_of(truth, ex) for ex in persistence["evidence"] if ex["step"].startswith("with_")]
        assert len({t["server"] for t in pinned}) == 1
    grok_hints = reports["sim-grok"]["tests"]["hints"]["figures"]
    assert "prompt_cache_key" in grok_hints["ignored"]  # a hint the model ignores is not taken for the fix


def test_rejected_parameter_is_recorded_and_retried_without(run: Any) -> None:
    reports = run[0]
    report = reports["sim-grok"]
    assert report["rejected_params"] == ["prompt_cache_retention"]
    retried = [ex for ex in _evidence(report) if ex["retried_without"]]
    assert retried and all(ex["status"] == 200 for ex in retried)
    assert all(r["rejected_params"] == [] for m, r in reports.items() if m != "sim-grok")


def test_write_delay_makes_the_first_repeat_miss(run: Any) -> None:
    reports, truth, _ = run
    basic = reports["sim-delayed"]["tests"]["basic"]
    assert basic["figures"]["first_hit_repeat"] == 2
    first_repeat = _truth_of(truth, basic["evidence"][1])
    assert (first_repeat["hit"], first_repeat["reason"]) == (False, "written, not yet readable (write delay)")
    assert reports["sim-openai"]["tests"]["basic"]["figures"]["first_hit_repeat"] == 1


def test_unit_semantics_are_not_no_caching(run: Any) -> None:
    partial = run[0]["sim-deepseek"]["tests"]["partial"]["figures"]
    assert (partial["second_hit"], partial["third_hit"], partial["unit_semantics"]) == (False, True, "units")


def test_contaminated_first_request_is_flagged(run: Any) -> None:
    reports = run[0]
    report = reports["sim-glm"]
    assert report["contaminated"] is True
    first = report["tests"]["basic"]["evidence"][0]
    assert first["cached_tokens"] == PROFILES["sim-glm"].cached_for(1100) > 0
    assert report["tests"]["basic"]["figures"]["contaminated"] is True
    assert all(not r["contaminated"] for m, r in reports.items() if m != "sim-glm")


def test_advertised_versus_observed(run: Any) -> None:
    reports = run[0]
    assert (reports["sim-llama"]["advertised_caching"], reports["sim-llama"]["drift"]) == (
        True, "advertised_not_observed")
    assert reports["sim-vllm"]["drift"] == "observed_not_advertised"
    assert reports["sim-nocache"]["drift"] is None
    assert reports["sim-openai"]["drift"] is None
    assert reports["sim-openai"]["saving_per_1m_cached_usd"] == pytest.approx(0.9)


def test_balances_go_down_with_spend(run: Any) -> None:
    for report in run[0].values():
        balance = report["balance"]
        assert balance["usd_last"] < balance["usd_first"]
        assert balance["diem_last"] < balance["diem_first"]


@pytest.mark.parametrize(("model", "stream_cached"), [("sim-stream-blind", None), ("sim-stream-stale", 0)])
def test_a_stream_that_reports_other_usage_breaks_parity(run: Any, model: str, stream_cached: int | None) -> None:
    reports, truth, _ = run
    stream = reports[model]["tests"]["stream"]
    assert reports[model]["stream_parity"] is False
    figures = stream["figures"]
    assert figures["stream_usage_reported"] is (stream_cached is not None)
    assert (figures["plain"]["cached_tokens"], figures["stream"]["cached_tokens"]) == (
        _truth_of(truth, stream["evidence"][1])["cached_tokens"], stream_cached)
    streamed = _truth_of(truth, stream["evidence"][2])
    assert streamed["stream"] is True and streamed["hit"] is True  # the cache hit: only the stream's report differs
    assert figures["plain"]["cached_tokens"] == streamed["cached_tokens"] > 0


def test_prompt_cache_retention_is_found_as_the_needed_hint(run: Any) -> None:
    reports, truth, _ = run
    report = reports["sim-retained"]
    hints = report["tests"]["hints"]["figures"]
    assert hints["needed"] == "prompt_cache_retention"
    assert hints["hit_ratio_by_hint"] == {"none": 0.0, "prompt_cache_key": 0.0, "x-grok-conv-id": 0.0,
                                          "cache_control": 0.0, "prompt_cache_retention": 1.0}
    done = [t for t in truth if t["model"] == "sim-retained"]
    assert {t["reason"] for t in done if not t["hit"]} >= {"cached only with prompt_cache_retention"}
    # what the later tests sent carried the hint they learnt, so they measured a cache that works
    assert all("prompt_cache_retention" in ex["hints"] for ex in report["tests"]["sizes"]["evidence"])
    assert report["min_prefix_tokens"] is not None and report["hit_ratio"] == 1.0


def test_a_random_spread_is_still_routing_limited(run: Any) -> None:
    reports, truth, _ = run
    persistence = reports["sim-scattered"]["tests"]["persistence"]
    figures = persistence["figures"]
    assert (figures["routing_limited"], figures["hit_ratio_with_hint"]) == (True, 1.0)
    unpinned = [_truth_of(truth, ex)["server"] for ex in persistence["evidence"] if ex["step"] == "without_hint"]
    assert any(a == b for a, b in itertools.pairwise(unpinned))  # random, not a rotation
    # the servers the unpinned repeats reached, which under a random spread is at most the true number
    servers = PROFILES["sim-scattered"].servers
    assert figures["servers_estimate"] == figures["hosts_seen"] == len(set(unpinned)) <= servers
