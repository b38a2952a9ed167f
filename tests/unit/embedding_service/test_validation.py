"""Request checks and settings of the embedding service (no model needed)."""

from __future__ import annotations

from typing import Any

import pytest

from embedding_service.errors import BadRequestError, SettingsError
from embedding_service.settings import EmbedSettings
from embedding_service.validation import InputLimits, openai_options, parse_object, texts_from

LIMITS = InputLimits(max_inputs=3, max_chars=10)


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, got an array"),
    (b'"text"', "must be a JSON object, got a string"),
])
def test_bodies_that_are_not_objects_are_refused(body: bytes, words: str) -> None:
    with pytest.raises(BadRequestError, match=words):
        parse_object(body)


@pytest.mark.parametrize(("payload", "words"), [
    ({}, "'input' is required"),
    ({"input": "one text"}, "'input' must be a list of strings, got a string"),
    ({"input": {"a": 1}}, "'input' must be a list of strings, got an object"),
    ({"input": []}, "must not be an empty list"),
    ({"input": ["a", "b", "c", "d"]}, "'input' has 4 items; at most 3"),
    ({"input": ["a", 7]}, r"'input\[1\]' must be a string, got a number \(token arrays"),
    ({"input": ["a", None]}, r"'input\[1\]' must be a string, got null"),
    ({"input": ["a", ""]}, r"'input\[1\]' is an empty string"),
    ({"input": ["x" * 11]}, r"'input\[0\]' has 11 characters; at most 10"),
])
def test_each_bad_input_names_its_problem(payload: dict[str, Any], words: str) -> None:
    with pytest.raises(BadRequestError, match=words) as caught:
        texts_from(payload, LIMITS, allow_single_string=False)
    assert caught.value.param == "input"
    assert caught.value.to_dict()["error"]["type"] == "invalid_request_error"


def test_openai_input_may_be_one_string() -> None:
    assert texts_from({"input": "hi"}, LIMITS, allow_single_string=True) == ["hi"]
    assert texts_from({"input": ["a", "b"]}, LIMITS, allow_single_string=True) == ["a", "b"]


def test_openai_options() -> None:
    assert openai_options({"model": "x"}, 384).encoding_format == "float"
    assert openai_options({"encoding_format": "base64", "dimensions": 384}, 384).encoding_format == "base64"
    with pytest.raises(BadRequestError, match="'dimensions' must be 384"):
        openai_options({"dimensions": 128}, 384)
    with pytest.raises(BadRequestError, match="'encoding_format'"):
        openai_options({"encoding_format": "int8"}, 384)


def test_settings_defaults_and_environment() -> None:
    assert EmbedSettings.from_env({}) == EmbedSettings()
    settings = EmbedSettings.from_env({"EMBED_PORT": "9000", "EMBED_BATCH_WINDOW_MS": "0.5",
                                       "EMBED_MAX_BATCH": "16", "LOG_LEVEL": "debug", "EMBED_HOST": ""})
    assert (settings.port, settings.batch_window_ms, settings.max_batch, settings.log_level,
            settings.host) == (9000, 0.5, 16, "DEBUG", "127.0.0.1")


@pytest.mark.parametrize(("name", "value"), [
    ("EMBED_PORT", "eighty"), ("EMBED_PORT", "70000"), ("EMBED_BATCH_WINDOW_MS", "-1"),
    ("EMBED_MAX_BATCH", "0"), ("EMBED_MAX_INPUTS", "1.5"), ("EMBED_MAX_CHARS", "0"), ("LOG_LEVEL", "loud"),
])
def test_a_bad_setting_names_itself(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        EmbedSettings.from_env({name: value})


def test_precision_setting() -> None:
    assert EmbedSettings.from_env({"EMBED_PRECISION": "FP32"}).precision == "fp32"
    with pytest.raises(SettingsError, match="EMBED_PRECISION"):
        EmbedSettings.from_env({"EMBED_PRECISION": "fp16"})
