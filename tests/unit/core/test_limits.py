"""proxy.core.limits: the model name, the body's depth (issue 10 items 17 and 19) and log escaping."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.core.canonical import Tenant, canonical_bytes, request_digest, semantic_scope
from proxy.core.limits import MAX_JSON_DEPTH, MAX_MODEL_CHARS, check_model, escape_log_field, exceeds_depth
from proxy.core.policy import parse_chat_request
from proxy.errors import BadRequestError


def nested(levels: int) -> Any:
    """A list nested ``levels`` deep (``nested(1) == [0]``)."""
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def body_bytes(depth: int, **fields: Any) -> bytes:
    """A chat body ``depth`` levels deep in all (the top-level object is level 1), written by hand:
    orjson cannot write what it is testing."""
    inner = "[" * (depth - 1) + "0" + "]" * (depth - 1)
    head = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields})
    return head[:-1] + b',"x":' + inner.encode() + b"}"


# -- where the key cannot be built: the measurement behind MAX_JSON_DEPTH ---------------------------------


def test_orjson_dumps_fails_at_255_levels() -> None:
    orjson.dumps(nested(254))
    with pytest.raises(TypeError, match="Recursion limit reached"):
        orjson.dumps(nested(255))


def test_canonical_bytes_fails_for_a_body_of_255_levels() -> None:
    canonical_bytes(orjson.loads(body_bytes(254)))
    with pytest.raises(TypeError, match="Recursion limit reached"):
        canonical_bytes(orjson.loads(body_bytes(255)))


def test_request_digest_fails_for_a_body_of_254_levels() -> None:
    request_digest(orjson.loads(body_bytes(253)), upstream="u", tenant=Tenant("o"))
    with pytest.raises(TypeError, match="Recursion limit reached"):
        request_digest(orjson.loads(body_bytes(254)), upstream="u", tenant=Tenant("o"))


def test_the_limit_is_far_below_what_the_key_needs() -> None:
    assert MAX_JSON_DEPTH == 128
    body = parse_chat_request(body_bytes(MAX_JSON_DEPTH))
    assert len(request_digest(body, upstream="u", tenant=Tenant("o"))) == 64
    assert len(semantic_scope(body, upstream="u", tenant=Tenant("o"))) == 64


# -- depth at parse time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 254, 300, 1024])
def test_too_deep_is_a_400_naming_the_problem(depth: int) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_chat_request(body_bytes(depth))
    assert caught.value.status_code == 400
    assert caught.value.message == "The request body is nested more than 128 levels deep."
    assert caught.value.code == "invalid_body"


def test_deeper_than_the_json_reader_is_the_same_400() -> None:
    raw = b'{"model":"m","messages":[{"role":"user","content":"x"}],"x":' + b"[" * 1100 + b"]" * 1100 + b"}"
    with pytest.raises(BadRequestError) as caught:
        parse_chat_request(raw)
    assert caught.value.message == "The request body is nested more than 128 levels deep."


def test_many_brackets_but_shallow_is_accepted() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "[{" * 50}]} for _ in range(200)]
    raw = orjson.dumps({"model": "m", "messages": messages})
    assert parse_chat_request(raw)["messages"] == messages


def test_deep_inside_a_tool_schema_is_counted() -> None:
    schema: Any = {"type": "string"}
    for _ in range(70):  # two levels per step: {"type": ..., "properties": {"p": schema}}
        schema = {"type": "object", "properties": {"p": schema}}
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}],
                        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]})
    with pytest.raises(BadRequestError, match="nested more than 128"):
        parse_chat_request(raw)


@pytest.mark.parametrize(("value", "limit", "expected"), [
    (0, 0, False), ("s", 0, False), ([], 1, False), ([], 0, True), ({"a": {"b": []}}, 3, False),
    ({"a": {"b": []}}, 2, True), ([1, [2, [3]], {"k": 4}], 3, False), ([1, [2, [3]], {"k": 4}], 2, True),
])
def test_exceeds_depth(value: Any, limit: int, expected: bool) -> None:
    assert exceeds_depth(value, limit) is expected


def test_exceeds_depth_does_not_recurse() -> None:
    assert exceeds_depth(orjson.loads(b"[" * 1024 + b"]" * 1024), 1023) is True


# -- model ---------------------------------------------------------------------------------------------


def request(model: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]})


@pytest.mark.parametrize("model", ["gpt-4o-mini", "x" * MAX_MODEL_CHARS, "accounts/fireworks/models/llama-v3p1",
                                   "ft:gpt-4o-mini:org::abc", "qwen2.5:7b", "\u901a\u4e49\u5343\u95ee",
                                   "my model"])
def test_model_accepted(model: str) -> None:
    assert parse_chat_request(request(model))["model"] == model


@pytest.mark.parametrize(("model", "message"), [
    ("x" * (MAX_MODEL_CHARS + 1), "'model' must be at most 256 characters, got 257."),
    ("x" * 1_000_000, "'model' must be at most 256 characters, got 1000000."),
    ("gpt-4o\nINFO forged log line", "'model' must contain only printable characters."),
    ("gpt-4o\r", "'model' must contain only printable characters."),
    ("gpt\t4o", "'model' must contain only printable characters."),
    ("gpt-4o\x1b[31m", "'model' must contain only printable characters."),
    ("gpt-4o\u202e", "'model' must contain only printable characters."),
    ("gpt-4o\u2028", "'model' must contain only printable characters."),
    ("gpt-4o\x00", "'model' must contain only printable characters."),
])
def test_model_refused(model: str, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_chat_request(request(model))
    assert (caught.value.message, caught.value.param, caught.value.code) == (message, "model", "invalid_value")


def test_check_model_alone() -> None:
    check_model("gpt-4o")
    with pytest.raises(BadRequestError):
        check_model("a\nb")


# -- log fields ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("caf\u00e9 \u901a", "caf\u00e9 \u901a"),
    ("a\nINFO forged", "a\\nINFO forged"),
    ("a\r\nb\tc", "a\\r\\nb\\tc"),
    ("back\\slash", "back\\\\slash"),
    ("\\n", "\\\\n"),  # a literal backslash-n is told apart from an escaped newline
    ("\x1b[31mred", "\\x1b[31mred"),
    ("\x7f\x85", "\\x7f\\x85"),
    ("rtl\u202eoverride", "rtl\\u202eoverride"),
    ("line\u2028sep", "line\\u2028sep"),
    ("\U000e0001tag", "\\U000e0001tag"),
    ("", ""),
])
def test_escape_log_field(text: str, expected: str) -> None:
    assert escape_log_field(text) == expected
    assert "\n" not in escape_log_field(text)
