"""Prices: the shipped table, lookups by name, PRICING_FILE overrides and the fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from proxy.errors import SettingsError
from proxy.monitoring.pricing import MAX_FALLBACKS, Price, Pricing


def test_shipped_defaults_cover_each_provider() -> None:
    pricing = Pricing()
    for model in ("gpt-4o-mini", "gpt-4o", "llama-3.3-70b-versatile", "openai/gpt-oss-120b", "venice-uncensored",
                  "deepseek-chat", "deepseek-reasoner"):
        assert pricing.lookup(model)[1] is False, model
    assert pricing.price("gpt-4o-mini") == Price(0.15, 0.075, 0.6)
    assert pricing.fallbacks == set()


@pytest.mark.parametrize(("model", "known"), [
    ("GPT-4o-mini", "gpt-4o-mini"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("o3-mini-2025-01-31", "o3-mini"),
    ("groq/llama-3.3-70b-versatile", "llama-3.3-70b-versatile"),
])
def test_names_are_matched_by_case_date_suffix_and_provider_prefix(model: str, known: str) -> None:
    pricing = Pricing()
    assert pricing.lookup(model) == (pricing.models[known], False)


def test_unknown_model_uses_the_fallback_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    pricing = Pricing()
    with caplog.at_level(logging.WARNING, logger="cachegate.pricing"):
        for _ in range(3):
            assert pricing.lookup("mystery-model") == (pricing.fallback, True)
        pricing.lookup("other-mystery")
    assert [r.getMessage().split("'")[1] for r in caplog.records] == ["mystery-model", "other-mystery"]
    assert pricing.describe()["fallback_models"] == ["mystery-model", "other-mystery"]
    assert pricing.fallback == Price(0.59, 0.59, 0.79)


def test_the_list_and_the_warnings_of_unknown_models_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    pricing = Pricing()
    with caplog.at_level(logging.WARNING, logger="cachegate.pricing"):
        for i in range(MAX_FALLBACKS + 50):
            assert pricing.lookup(f"mystery-{i}") == (pricing.fallback, True)
    assert len(pricing.fallbacks) == MAX_FALLBACKS
    assert len(caplog.records) == MAX_FALLBACKS + 1  # one per listed name, then one saying the list is full
    assert "not listed" in caplog.records[-1].getMessage()


def test_price_arithmetic() -> None:
    price = Price(input=2.0, cached_input=0.5, output=8.0)
    assert price.full(1_000_000, 500_000) == pytest.approx(2.0 + 4.0)
    assert price.spent(1_000_000, 0, 400_000) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5)
    assert price.provider_saving(400_000) == pytest.approx(0.4 * 1.5)
    assert price.spent(10, 0, 50) == pytest.approx(10 * 0.5 / 1e6)  # cached never exceeds the prompt


def test_pricing_file_overrides_and_adds(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"gpt-4o-mini": {"input": 1, "output": 2},
                                           "my-model": {"input": 3, "cached_input": 1, "output": 4}},
                                "fallback": {"input": 9, "output": 9}}))
    pricing = Pricing.load(str(path))
    assert pricing.price("gpt-4o-mini") == Price(1.0, 1.0, 2.0)
    assert pricing.price("my-model") == Price(3.0, 1.0, 4.0)
    assert pricing.price("gpt-4o") == Price(2.5, 1.25, 10.0)  # untouched defaults stay
    assert pricing.lookup("unknown") == (Price(9.0, 9.0, 9.0), True)
    assert pricing.describe()["source"] == f"defaults+{path}"


def test_a_plain_model_map_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-model": {"input": 3, "output": 4}}))
    assert Pricing.load(str(path)).price("my-model") == Price(3.0, 3.0, 4.0)


@pytest.mark.parametrize(("content", "complaint"), [
    ("not json", "PRICING_FILE"),
    (json.dumps({"models": {"m": {"input": 1}}}), "missing output"),
    (json.dumps({"models": {"m": {"input": "x", "output": 1}}}), "must be numbers"),
    (json.dumps({"models": {"m": {"input": -1, "output": 1}}}), "negative"),
    (json.dumps([1, 2]), "JSON object"),
])
def test_a_bad_pricing_file_stops_start_up_naming_the_setting(tmp_path: Path, content: str, complaint: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(SettingsError) as caught:
        Pricing.load(str(path))
    assert caught.value.param == "PRICING_FILE"
    assert complaint in caught.value.message


def test_missing_pricing_file() -> None:
    with pytest.raises(SettingsError, match="PRICING_FILE"):
        Pricing.load("/nonexistent/prices.json")
