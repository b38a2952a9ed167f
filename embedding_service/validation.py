"""Checks of embedding request bodies; every problem becomes a 400 whose message names it.

Bounds come from the settings so that one request cannot hold the model for long: at most
``max_inputs`` texts of at most ``max_chars`` characters each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import BadRequestError


@dataclass(frozen=True)
class InputLimits:
    max_inputs: int = 256
    max_chars: int = 20_000


@dataclass(frozen=True)
class OpenAIOptions:
    """The /v1/embeddings fields besides ``input`` that change the answer."""

    encoding_format: str = "float"


def parse_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise BadRequestError(f"the request body must be a JSON object, got {_kind(payload)}",
                              code="invalid_json")
    return payload


def texts_from(payload: dict[str, Any], limits: InputLimits, *, allow_single_string: bool) -> list[str]:
    """The list of texts in ``payload["input"]``, or a BadRequestError naming what is wrong."""
    if "input" not in payload:
        raise _bad_input("'input' is required", "missing_input")
    raw = payload["input"]
    if isinstance(raw, str) and allow_single_string:
        raw = [raw]
    wanted = "a string or a list of strings" if allow_single_string else "a list of strings"
    if not isinstance(raw, list):
        raise _bad_input(f"'input' must be {wanted}, got {_kind(raw)}", "invalid_type")
    if not raw:
        raise _bad_input("'input' must not be an empty list", "empty_input")
    if len(raw) > limits.max_inputs:
        raise _bad_input(f"'input' has {len(raw)} items; at most {limits.max_inputs} are allowed",
                         "too_many_inputs")
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            hint = " (token arrays are not supported)" if isinstance(item, int | list) else ""
            raise _bad_input(f"'input[{index}]' must be a string, got {_kind(item)}{hint}", "invalid_type")
        if not item:
            raise _bad_input(f"'input[{index}]' is an empty string", "empty_string")
        if len(item) > limits.max_chars:
            raise _bad_input(f"'input[{index}]' has {len(item)} characters; at most {limits.max_chars} "
                             "are allowed", "input_too_long")
    return raw


def openai_options(payload: dict[str, Any], dim: int) -> OpenAIOptions:
    """Validate the OpenAI fields we honour; ``model`` and ``user`` are accepted and ignored."""
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequestError(f"'model' must be a string, got {_kind(model)}", param="model")
    encoding_format = payload.get("encoding_format", "float")
    if encoding_format not in ("float", "base64"):
        raise BadRequestError("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    dimensions = payload.get("dimensions")
    if dimensions is not None and dimensions != dim:
        raise BadRequestError(f"'dimensions' must be {dim} for this model, got {dimensions!r}",
                              param="dimensions")
    return OpenAIOptions(encoding_format=encoding_format)


def _bad_input(message: str, code: str) -> BadRequestError:
    return BadRequestError(message, param="input", code=code)


def _kind(value: Any) -> str:
    """A JSON name for the type of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
