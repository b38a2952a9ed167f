"""The semantic tier with the verifier (the shipped default) end to end: the real cross-encoder reads the
best candidate with the new prompt, through a real proxy, the embedding service and each store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from proxy.semantic.verifier import OnnxVerifier
from tests.support.proxy import ProxyServer, admin_headers
from tests.support.servers import SimulatorServer

from .conftest import StartSemantic, tier_of, wait_stored

MODEL = "gpt-4o-mini"
#: a paraphrase the shipped model accepts, and a look-alike (roles swapped) it refuses although the embeddings
#: are closer than the paraphrase's (0.98 against 0.87)
SAME = ("How do I make pancakes?", "What is a good recipe for pancakes?")
ROLES = ("Does stress cause high blood pressure?", "Does high blood pressure cause stress?")


def ask(proxy: ProxyServer, text: str, **params: Any) -> Any:
    return proxy.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **params)


def verified(start_semantic: StartSemantic, **overrides: Any) -> ProxyServer:
    overrides.setdefault("semantic_verifier", "on")
    overrides.setdefault("semantic_threshold", None)  # the verifier's default: 0.85
    overrides.setdefault("semantic_verifier_timeout", 30.0)  # a loaded CI box must not turn a hit into a miss
    return start_semantic(**overrides)


def semantic_metrics(proxy: ProxyServer) -> Any:
    return httpx.get(proxy.url + "/metrics/semantic", timeout=10).json()


def test_the_verifier_serves_a_paraphrase_and_refuses_swapped_roles(start_semantic: StartSemantic,
                                                                     sim: SimulatorServer) -> None:
    proxy = verified(start_semantic)
    assert tier_of(proxy).selector.threshold == 0.85
    for stored, _ in (SAME, ROLES):
        assert ask(proxy, stored).headers["x-cache"] == "MISS"
    wait_stored(proxy, 2)
    hit = ask(proxy, SAME[1])
    assert hit.headers["x-cache"] == "HIT" and hit.headers["x-cache-tier"] == "semantic"
    refused = ask(proxy, ROLES[1])
    assert refused.headers["x-cache"] == "MISS"  # the cosine was 0.98: the verifier said no
    body = semantic_metrics(proxy)
    assert body["refused"].get("verifier") == 1 and body["hits"] == 1
    (today,) = body["verifier"]["days"]
    assert (today["candidates"], today["accepted"], today["refused"]) == (2, 1, 1)
    assert body["verifier"]["checks_in_front"] == ["numbers", "names", "negation"]


def test_a_verifier_that_fails_serves_nothing(start_semantic: StartSemantic, sim: SimulatorServer,
                                              tmp_path: Path) -> None:
    broken = OnnxVerifier(tmp_path / "no-model-here")
    proxy = verified(start_semantic, app_kwargs={"verifier": broken})
    assert ask(proxy, SAME[0]).headers["x-cache"] == "MISS"
    wait_stored(proxy, 1)
    answer = ask(proxy, SAME[1])
    assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"  # fail closed: never unverified
    assert semantic_metrics(proxy)["verifier_errors"] == 1


def test_requests_with_tools_skip_the_tier(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = verified(start_semantic)
    tools = [{"type": "function", "function": {"name": "recipe", "parameters": {"type": "object"}}}]
    assert ask(proxy, SAME[0], tools=tools).headers["x-cache"] == "MISS"
    assert ask(proxy, SAME[1], tools=tools).headers["x-cache"] == "MISS"
    assert tier_of(proxy).stats["skipped"] == 2 and tier_of(proxy).stats["stored"] == 0


def test_shadow_mode_shows_the_verifiers_scores_per_day(start_semantic: StartSemantic,
                                                        sim: SimulatorServer) -> None:
    proxy = verified(start_semantic, semantic_mode="shadow")
    ask(proxy, SAME[0])
    wait_stored(proxy, 1)
    assert ask(proxy, SAME[1]).headers["x-cache"] == "MISS"  # shadow: always the upstream
    (today,) = semantic_metrics(proxy)["verifier"]["days"]
    assert today["accepted"] == 1 and sum(today["scores"].values()) == 1 and today["scores"]["<=1"] == 1


def test_feedback_verdicts_are_exported_as_labelled_pairs(start_semantic: StartSemantic, sim: SimulatorServer,
                                                          tmp_path: Path) -> None:
    proxy = verified(start_semantic, feedback_keep_text=True)
    ask(proxy, SAME[0])
    wait_stored(proxy, 1)
    hit = ask(proxy, SAME[1])
    assert hit.headers["x-cache"] == "HIT"
    verdict = httpx.post(proxy.url + "/admin/cache/feedback", timeout=10,
                         headers={**admin_headers(proxy), "x-feedback-api-key": "sk-test-alice"},
                         json={"request_id": hit.headers["x-request-id"], "verdict": "right"})
    assert verdict.status_code == 200, verdict.text
    out = subprocess.run([sys.executable, "-m", "proxy.cli", "semantic", "export-feedback", "--data-dir",
                          str(proxy.settings.data_path)], capture_output=True, text=True, check=True)
    (pair,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (pair["a"], pair["b"], pair["label"], pair["source"]) == (SAME[0], SAME[1], 1, "feedback")
