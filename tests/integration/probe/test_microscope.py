"""The microscope against the simulator: a live basic test with its raw evidence, and a curl command that,
run in a shell, sends the very same request (and, the prefix being cached, gets the hit)."""

from __future__ import annotations

import os
import subprocess

import httpx
import orjson

from tests.integration.probe.conftest import StartMonitor
from tests.integration.probe.helpers import api, cycle_done, truth
from tests.support.servers import SimulatorServer


def test_the_microscope_shows_the_evidence_and_its_curl_command_reproduces_it(start_monitor: StartMonitor,
                                                                             psim: SimulatorServer) -> None:
    proxy = start_monitor(probe_api_key="pk-secret-123")
    cycle_done(proxy)
    before = len(truth(psim))
    look = api(proxy, "test/sim-openai")
    assert (look["model"], look["verdict"], look["provider"]) == ("sim-openai", "caches", "OpenAI")
    assert "pk-secret-123" not in orjson.dumps(look).decode()  # the key is nowhere in the answer
    evidence = look["evidence"]
    done = truth(psim)[before:]
    assert len(evidence) == len(done) == 4 == len(look["timings"])
    for ex, seen in zip(evidence, done, strict=True):
        assert ex["upstream_request_id"] == f"sim-{seen['seq']}"
        assert ex["request"]["body"]["model"] == "sim-openai"
        assert ["authorization", "Bearer <redacted>"] in ex["request"]["headers"]
        assert ex["response"]["status"] == 200
        assert ex["response"]["body"]["usage"]["prompt_tokens"] == seen["prompt_tokens"]
        assert ex["cached_tokens"] == seen["cached_tokens"]
    [first, *repeats] = look["timings"]
    assert first["hit"] is False and all(t["hit"] for t in repeats)
    assert look["latency_first"] == first["latency"]
    assert look["speedup"] == round(first["latency"] / look["latency_cached_median"], 3) and look["speedup"] > 1
    assert [t["source"] for t in api(proxy, "results", source="microscope")["results"]] == ["microscope"] * 4

    # the command, run by a shell with the reader's own key, sends the same request again
    assert "$PROBE_API_KEY" in look["curl"]
    result = subprocess.run(["bash", "-c", look["curl"]], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PROBE_API_KEY": "pk-secret-123"})
    assert result.returncode == 0, result.stderr
    assert psim.state.last_body == evidence[0]["request"]["body"]
    assert psim.state.last_headers["authorization"] == "Bearer pk-secret-123"
    answer = orjson.loads(result.stdout)
    replayed = truth(psim)[-1]
    assert answer["usage"]["prompt_tokens"] == evidence[0]["prompt_tokens"] == replayed["prompt_tokens"]
    assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == replayed["cached_tokens"] > 0  # the hit


def test_compare_runs_two_models_side_by_side(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    proxy = start_monitor(probe_models=("sim-openai", "sim-llama"))
    cycle_done(proxy)
    before = len(truth(psim))
    body = api(proxy, "compare/sim-openai/sim-llama")
    a, b = body["models"]
    assert (a["model"], a["verdict"], b["model"], b["verdict"]) == ("sim-openai", "caches", "sim-llama", "no_caching")
    assert body["comparison"] == {"higher_hit_ratio": "sim-openai", "higher_speedup": None, "both_cache": False}
    assert len(truth(psim)) - before == 8
    assert httpx.get(proxy.url + "/probe/api/compare/sim-openai").status_code == 404
