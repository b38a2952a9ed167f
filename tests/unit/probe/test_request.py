"""The probe's request builder, prompts, token gauge, catalog parsing and report table: exact values."""

from __future__ import annotations

import orjson
import pytest

from proxy.probe.catalog import advertised, is_text_model
from proxy.probe.config import MISSING_VENICE_KEY, is_venice, resolve
from proxy.probe.prompts import PROSE, TokenGauge, filler, messages, new_nonce
from proxy.probe.request import build_request, rejected_param
from proxy.settings import Settings, SettingsError

MESSAGES = [{"role": "user", "content": "hi"}]


def test_plain_request_and_each_hint() -> None:
    body, headers = build_request("m", MESSAGES)
    assert body == {"model": "m", "messages": MESSAGES, "max_tokens": 16, "temperature": 0}
    assert headers == []
    body, headers = build_request("m", MESSAGES, stream=True, hints=["prompt_cache_key", "x-grok-conv-id",
                                                                     "prompt_cache_retention"], pin="n1", venice=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["prompt_cache_key"] == "n1"
    assert body["prompt_cache_retention"] == "24h"
    assert body["venice_parameters"] == {"include_venice_system_prompt": False}
    assert headers == [("x-grok-conv-id", "n1")]
    body, _ = build_request("m", MESSAGES, hints=["prompt_cache_retention"], without={"prompt_cache_retention"})
    assert "prompt_cache_retention" not in body
    with pytest.raises(ValueError, match="unknown cache hints: magic"):
        build_request("m", MESSAGES, hints=["magic"])


def test_rejected_param_is_read_from_a_400() -> None:
    sent = {"prompt_cache_retention": "24h", "model": "m"}
    venice = orjson.dumps({"error": {"message": "Extra inputs are not permitted, field: 'prompt_cache_retention'"}})
    assert rejected_param(400, venice, sent) == "prompt_cache_retention"
    assert rejected_param(400, orjson.dumps({"error": {"message": "x", "param": "prompt_cache_retention"}}),
                          sent) == "prompt_cache_retention"
    assert rejected_param(400, orjson.dumps({"error": {"message": "bad model"}}), sent) is None
    assert rejected_param(400, venice, {"model": "m"}) is None  # not sent: nothing to drop
    assert rejected_param(500, venice, sent) is None
    assert rejected_param(400, b"<html>", sent) is None


def test_prompts_start_with_the_nonce_and_carry_marks() -> None:
    nonce = new_nonce()
    assert nonce.startswith("probe-") and len(nonce) == 22
    plain = messages(nonce, 5)
    assert plain[0] == {"role": "system", "content": f"{nonce} The harbour town woke slowly"}
    marked = messages(nonce, 2, cache_control=True)
    assert marked[0]["content"][0] == {"type": "text", "text": f"{nonce} The harbour",
                                       "cache_control": {"type": "ephemeral"}}
    assert marked[1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert filler(len(PROSE) + 1).split()[-1] == PROSE[0]  # wraps around


def test_token_gauge_learns_the_upstreams_count() -> None:
    gauge = TokenGauge()
    assert gauge.words_for(150) == round((150 - 20) / 1.3)
    assert gauge.tokens_for(100) == 150 and gauge.tokens_for(101) == 152  # 20 + 1.3 a word, rounded up
    gauge.observe(100, 112)
    gauge.observe(1000, 1012)  # 1 token a word, 12 of overhead
    assert (gauge.per_word, gauge.overhead) == (1.0, 12.0)
    assert gauge.words_for(1024) == 1012
    assert gauge.tokens_for(1012) == 1024  # the reading an answer without usage is charged
    gauge.observe(10, None)  # an answer without usage teaches nothing
    assert gauge.words_for(1024) == 1012


def test_catalog_prices_and_text_models() -> None:
    venice = {"id": "glm", "type": "text", "model_spec": {"pricing": {"input": {"usd": 0.85, "diem": 8.5},
                                                                      "cache_input": {"usd": 0.11},
                                                                      "output": {"usd": 2.75}}}}
    assert advertised(venice).as_dict() == {"caching": True, "input_per_1m": 0.85, "cached_input_per_1m": 0.11,
                                            "output_per_1m": 2.75, "saving_per_1m_cached": 0.74}
    # 1000 prompt tokens of which 600 cached, 10 completion tokens
    assert advertised(venice).cost(1000, 600, 10) == pytest.approx((400 * 0.85 + 600 * 0.11 + 10 * 2.75) / 1e6)
    assert advertised({"id": "gpt-4o"}).cost(1000, 0, 10) is None
    assert advertised({"id": "llama", "model_spec": {"pricing": {"input": {"usd": 0.7}}}}).caching is False
    openrouter = advertised({"id": "x", "pricing": {"prompt": "0.000001", "input_cache_read": "0.0000001"}})
    assert openrouter.saving_per_million == pytest.approx(0.9)
    assert advertised({"id": "gpt-4o"}).caching is None
    assert [is_text_model(e) for e in ({"id": "a", "type": "text"}, {"id": "b", "type": "image"},
                                       {"id": "text-embedding-3-small"}, {"id": "gpt-4o"})] == [True, False, False,
                                                                                                 True]


def test_target_and_the_venice_key() -> None:
    assert is_venice("https://api.venice.ai/api/v1") and not is_venice("https://api.openai.com/v1")
    venice = Settings(probe_upstream_url="https://api.venice.ai/api/v1")
    with pytest.raises(SettingsError) as caught:
        resolve(venice)
    assert caught.value.message == MISSING_VENICE_KEY
    target = resolve(venice.replace(venice_api_key="vk"))
    assert (target.api_key, target.venice, target.models) == ("vk", True, ("all",))
    assert resolve(venice.replace(venice_api_key="vk", probe_api_key="pk")).api_key == "pk"
    plain = resolve(Settings(upstream_api_key="up"), tests=("basic",), quick=True, ttl_range=(1.0, 30.0))
    assert (plain.api_key, plain.venice, plain.tests, plain.config.ttl_range) == ("up", False, ("basic",),
                                                                                  (1.0, 30.0))
    assert resolve(Settings(probe_upstream_url="http://127.0.0.1:1/v1")).api_key is None  # another upstream
    assert "ttl" not in resolve(Settings(probe_quick=True)).tests
    # with a Venice key and no PROBE_UPSTREAM_URL the probe measures Venice: that key opens nothing else
    assert resolve(Settings(venice_api_key="vk")).upstream_url == "https://api.venice.ai/api/v1"
    assert resolve(Settings()).upstream_url == Settings().upstream_base_url
