"""run_probe and the TTL steps against the simulator over HTTP, beyond the CLI's full run: Venice mode,
resumable TTL state, a narrow TTL range, and the console script itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from proxy.probe import ModelSession, ProbeClient, ProbeConfig, TtlSearch, finish_step, prime_step, run_probe
from proxy.probe.config import MISSING_VENICE_KEY
from proxy.upstream import HttpUpstream
from tests.support.cache_profiles import PROFILES
from tests.support.servers import SimulatorServer
from tests.support.sim_clock import SimHttpClock


@pytest.fixture(scope="module")
def profiled() -> Iterator[SimulatorServer]:
    with SimulatorServer(catalog="profiles") as sim:
        yield sim


def test_venice_mode_keeps_venices_system_prompt_out(profiled: SimulatorServer) -> None:
    async def go() -> None:
        upstream = HttpUpstream(profiled.base_url, timeout=10)
        try:
            report = await run_probe("sim-glm", ["basic", "sizes"], upstream, clock=SimHttpClock(profiled.url),
                                     venice=True)
        finally:
            await upstream.aclose()
        assert report.verdict.contaminated is False
        assert report.verdict.verdict == "caches"
        minimum = report.as_dict()["min_prefix_tokens"]
        assert 1024 <= minimum < 1024 + 128
        truth = httpx.get(profiled.url + "/_truth", params={"model": "sim-glm"}).json()
        assert truth[0]["prompt_tokens"] == report.exchanges[0].usage.prompt_tokens
        assert truth[0]["cached_tokens"] == 0  # nothing prepended, so nothing of it was already cached
        assert profiled.state.last_body["venice_parameters"] == {"include_venice_system_prompt": False}

    asyncio.run(go())


def test_ttl_steps_are_scheduled_and_the_search_resumes(profiled: SimulatorServer) -> None:
    profile = PROFILES["sim-kimi"]  # TTL 150 s, no refresh

    async def go() -> None:
        clock = SimHttpClock(profiled.url)
        upstream = HttpUpstream(profiled.base_url, timeout=10)
        session = ModelSession("sim-kimi", ProbeClient(upstream, clock, api_key=None), clock, ProbeConfig())
        search = TtlSearch(5.0, 3600.0)
        try:
            while (gap := search.next_gap()) is not None:
                pending = await prime_step(session, gap, "step")
                # a scheduler would persist the search and come back when the step is due
                search = TtlSearch.from_dict(orjson.loads(orjson.dumps(search.as_dict())))
                httpx.post(profiled.url + "/_clock", json={"advance": gap}).raise_for_status()
                assert clock.now() >= pending.due
                again = await finish_step(session, pending, "step")
                search.record(gap, again.hit)
        finally:
            await upstream.aclose()
        lower, upper = search.bracket or (None, None)
        assert lower is not None and upper is not None
        assert lower < profile.ttl <= upper
        assert clock.slept == 0  # every gap passed on the simulator's clock, not in a sleep of the probe

    asyncio.run(go())


def test_a_narrow_ttl_range_reports_an_open_bracket(profiled: SimulatorServer) -> None:
    async def go() -> None:
        upstream = HttpUpstream(profiled.base_url, timeout=10)
        try:
            report = await run_probe("sim-vllm", ["basic", "ttl"], upstream, clock=SimHttpClock(profiled.url),
                                     config=ProbeConfig(ttl_range=(1.0, 30.0)))
        finally:
            await upstream.aclose()
        assert report.as_dict()["ttl_seconds"] == [30.0, None]  # the true 90 s lies above the range

    asyncio.run(go())


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_persistence_holds_under_a_random_spread(profiled: SimulatorServer, seed: int) -> None:
    """Whatever servers a random balancer happens to pick, the verdict is routing-limited with the key and the
    estimate is the servers the unpinned repeats met (a lower bound of the true four), never more."""
    profiled.state.reset()
    profiled.state.cache.seed = seed

    async def go() -> None:
        upstream = HttpUpstream(profiled.base_url, timeout=10)
        try:
            report = await run_probe("sim-scattered", ["basic", "hints", "persistence"], upstream,
                                     clock=SimHttpClock(profiled.url))
        finally:
            await upstream.aclose()
            profiled.state.cache.seed = 0
        assert (report.verdict.verdict, report.verdict.hint) == ("routing_limited", "prompt_cache_key")
        figures = report.tests["persistence"].figures
        truth = httpx.get(profiled.url + "/_truth", params={"model": "sim-scattered"}).json()
        servers = {f"sim-{t['seq']}": t["server"] for t in truth}
        unpinned = [servers[ex.upstream_request_id or ""] for ex in report.tests["persistence"].evidence
                    if ex.step == "without_hint"]
        assert figures["servers_estimate"] == len(set(unpinned)) <= PROFILES["sim-scattered"].servers
        assert figures["hit_ratio_with_hint"] == 1.0

    asyncio.run(go())


CACHEGATE = str(Path(sys.executable).parent / "cachegate")


def test_console_script_probes_the_simulator(profiled: SimulatorServer) -> None:
    env = {**os.environ, "PROBE_UPSTREAM_URL": profiled.base_url}
    result = subprocess.run([CACHEGATE, "probe", "--json", "--models", "sim-openai,sim-llama", "--tests",
                             "basic,stream"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reports = {r["model"]: r for r in orjson.loads(result.stdout)}
    assert (reports["sim-openai"]["verdict"], reports["sim-llama"]["verdict"]) == ("caches", "no_caching")
    assert reports["sim-openai"]["stream_parity"] is True
    table = subprocess.run([CACHEGATE, "probe", "--models", "sim-llama", "--tests", "basic", "--quick"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:2] == ["model", "verdict"]
    assert "sim-llama  no_caching [drift]" in table.stdout


def test_venice_without_a_key_stops_with_the_message() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VENICE_API_KEY", "API_KEY_VENICE", "PROBE_API_KEY")}
    env["PROBE_UPSTREAM_URL"] = "https://api.venice.ai/api/v1"
    result = subprocess.run([CACHEGATE, "probe"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert MISSING_VENICE_KEY in result.stderr


@pytest.mark.parametrize(("args", "named"), [(["--tests", "basic,everything"], "unknown probe tests: everything"),
                                             (["--ttl-range", "30:1"], "MIN:MAX")])
def test_bad_flags_stop_naming_the_problem(args: list[str], named: str) -> None:
    result = subprocess.run([CACHEGATE, "probe", *args], env={**os.environ, "PROBE_UPSTREAM_URL": "http://127.0.0.1:9"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert named in result.stderr


def test_probe_json_is_the_setting_of_json(profiled: SimulatorServer) -> None:
    import io

    from proxy.probe.cli import main as probe_main

    out, err = io.StringIO(), io.StringIO()
    environ = {"PROBE_UPSTREAM_URL": profiled.base_url, "PROBE_JSON": "true", "PROBE_MODELS": "sim-llama",
               "PROBE_TESTS": "basic"}
    code = probe_main([], environ=environ, clock=SimHttpClock(profiled.url), stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    [report] = orjson.loads(out.getvalue())
    assert (report["model"], report["verdict"]) == ("sim-llama", "no_caching")
