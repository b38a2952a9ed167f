"""proxy.core.policy: cache directives, TTL choice, request validation, what may be stored."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.core.policy import (
    MAX_TTL,
    Directives,
    choose_ttl,
    is_complete,
    parse_chat_request,
    parse_directives,
    wants_stream,
    wants_usage_chunk,
)
from proxy.errors import BadRequestError

# -- parse_directives -------------------------------------------------------------------------------


def test_no_headers_reads_and_writes() -> None:
    assert parse_directives({}) == Directives(read=True, write=True, bypass=False, ttl=None)


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "TRUE", " True "])
def test_bypass_true(value: str) -> None:
    assert parse_directives({"x-bypass-cache": value}) == Directives(read=False, write=False, bypass=True, ttl=None)


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "", "False"])
def test_bypass_false(value: str) -> None:
    assert parse_directives({"x-bypass-cache": value}) == Directives(read=True, write=True, bypass=False, ttl=None)


@pytest.mark.parametrize("value", ["maybe", "2", "y", "truee", "-1"])
def test_bypass_garbage_is_bad_request(value: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_directives({"x-bypass-cache": value})
    error = caught.value
    assert error.param == "x-bypass-cache"
    assert error.code == "invalid_header"
    assert error.status_code == 400
    assert "x-bypass-cache" in error.message
    assert repr(value) in error.message


def test_bypass_overrides_cache_control_and_keeps_ttl() -> None:
    assert parse_directives({"x-bypass-cache": "true", "cache-control": "no-store", "x-cache-ttl": "60"}) == \
        Directives(read=False, write=False, bypass=True, ttl=60)


@pytest.mark.parametrize(("value", "read", "write"), [
    ("no-cache", False, True),
    ("no-store", True, False),
    ("no-cache, no-store", False, False),
    ("no-store,no-cache", False, False),
    ("no-cache, max-age=0", False, True),
    ("max-age=0, no-store", True, False),
    ("NO-CACHE", False, True),
    ("  no-cache  ", False, True),
    ('no-cache="set-cookie"', False, True),
    ("max-age=0", True, True),
    ("private, must-revalidate", True, True),
    ("", True, True),
    ("no-caches", True, True),
])
def test_cache_control(value: str, read: bool, write: bool) -> None:
    assert parse_directives({"cache-control": value}) == Directives(read=read, write=write, bypass=False, ttl=None)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("31536000", 31_536_000), (" 60 ", 60), ("0300", 300)])
def test_ttl_valid(value: str, expected: int) -> None:
    assert parse_directives({"x-cache-ttl": value}).ttl == expected


def test_max_ttl_is_one_year() -> None:
    assert MAX_TTL == 31_536_000


@pytest.mark.parametrize("value", ["0", "31536001", "-5", "abc", "1.5", "", "+5", "1e3", "60s"])
def test_ttl_invalid_is_bad_request(value: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_directives({"x-cache-ttl": value})
    error = caught.value
    assert error.param == "x-cache-ttl"
    assert error.code == "invalid_header"
    assert error.status_code == 400
    assert error.message.startswith("x-cache-ttl must be a whole number of seconds from 1 to 31536000")
    assert error.message.endswith(f"got {value!r}")


def test_ttl_superscript_digit_is_bad_request() -> None:
    with pytest.raises(BadRequestError):
        parse_directives({"x-cache-ttl": "\u00b2"})


def test_directives_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Directives().read = False  # type: ignore[misc]


# -- choose_ttl -------------------------------------------------------------------------------------


def ttl_for(directives: Directives, body: dict[str, Any]) -> int:
    return choose_ttl(directives, body, default=86_400, creative=3_600, creative_temperature=0.7)


def test_explicit_ttl_wins_over_creative_temperature() -> None:
    assert ttl_for(Directives(ttl=42), {"temperature": 1.5}) == 42


def test_explicit_ttl_wins_over_default() -> None:
    assert ttl_for(Directives(ttl=42), {}) == 42


@pytest.mark.parametrize(("temperature", "expected"), [
    (1.5, 3_600),
    (0.71, 3_600),
    (1, 3_600),
    (0.7, 86_400),
    (0.2, 86_400),
    (0, 86_400),
    (None, 86_400),
    ("1.5", 86_400),
    (True, 86_400),
])
def test_ttl_by_temperature(temperature: Any, expected: int) -> None:
    assert ttl_for(Directives(), {"temperature": temperature}) == expected


def test_no_temperature_is_default() -> None:
    assert ttl_for(Directives(), {"model": "m"}) == 86_400


def test_bool_temperature_ignored_even_when_bound_is_below_one() -> None:
    # True == 1 > 0.5, yet a bool is not a temperature
    assert choose_ttl(Directives(), {"temperature": True}, default=10, creative=20, creative_temperature=0.5) == 10


# -- parse_chat_request -----------------------------------------------------------------------------

VALID = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_parse_valid() -> None:
    body = {**VALID, "temperature": 0.2, "stream": True}
    assert parse_chat_request(orjson.dumps(body)) == body


def test_parse_stream_null_allowed() -> None:
    assert parse_chat_request(orjson.dumps({**VALID, "stream": None}))["stream"] is None


@pytest.mark.parametrize(("raw", "param", "code"), [
    (b"{not json", None, "invalid_json"),
    (b"", None, "invalid_json"),
    (b"\xff\xfe", None, "invalid_json"),
    (b"[]", None, "invalid_body"),
    (b'[{"model": "m"}]', None, "invalid_body"),
    (b'"text"', None, "invalid_body"),
    (b"null", None, "invalid_body"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "model", "missing_required_parameter"),
    (b'{"model": null, "messages": [{"role": "user", "content": "hi"}]}', "model", "missing_required_parameter"),
    (b'{"model": "", "messages": [{"role": "user", "content": "hi"}]}', "model", "invalid_type"),
    (b'{"model": "   ", "messages": [{"role": "user", "content": "hi"}]}', "model", "invalid_type"),
    (b'{"model": 4, "messages": [{"role": "user", "content": "hi"}]}', "model", "invalid_type"),
    (b'{"model": ["gpt"], "messages": [{"role": "user", "content": "hi"}]}', "model", "invalid_type"),
    (b'{"model": "m"}', "messages", "missing_required_parameter"),
    (b'{"model": "m", "messages": []}', "messages", "invalid_type"),
    (b'{"model": "m", "messages": {"role": "user"}}', "messages", "invalid_type"),
    (b'{"model": "m", "messages": "hi"}', "messages", "invalid_type"),
    (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0]", "invalid_type"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": 3}]}', "messages[1]", "invalid_type"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "a"}, "hi"]}', "messages[1]", "invalid_type"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "a"}], "stream": "true"}', "stream", "invalid_type"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "a"}], "stream": 1}', "stream", "invalid_type"),
])
def test_parse_invalid(raw: bytes, param: str | None, code: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_chat_request(raw)
    error = caught.value
    assert error.param == param
    assert error.code == code
    assert error.status_code == 400
    assert error.error_type == "invalid_request_error"


def test_parse_invalid_json_message() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_chat_request(b"{not json")
    assert caught.value.message.startswith("The request body is not valid JSON: ")


def test_parse_messages_error_names_index() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_chat_request(b'{"model": "m", "messages": [{"role": "user"}, {}, {}]}')
    assert caught.value.message == "messages[1] must be an object with a 'role'."


# -- is_complete ------------------------------------------------------------------------------------


def choice(index: int, finish_reason: str | None) -> dict[str, Any]:
    return {"index": index, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish_reason}


@pytest.mark.parametrize(("completion", "expected"), [
    ({"choices": [choice(0, "stop")]}, True),
    ({"choices": [choice(0, "stop"), choice(1, "length")]}, True),
    ({"choices": [choice(0, "tool_calls")]}, True),
    ({"choices": [choice(0, "stop"), choice(1, None)]}, False),
    ({"choices": [choice(0, "stop"), {"index": 1, "message": {}}]}, False),
    ({"choices": [choice(0, "")]}, False),
    ({"choices": []}, False),
    ({"choices": None}, False),
    ({"choices": {"0": choice(0, "stop")}}, False),
    ({"choices": ["stop"]}, False),
    ({}, False),
    ({"error": {"message": "boom"}, "choices": [choice(0, "stop")]}, False),
    ({"error": {"message": "rate limited", "type": "rate_limit_error"}}, False),
    (None, False),
    ([choice(0, "stop")], False),
    ("stop", False),
])
def test_is_complete(completion: Any, expected: bool) -> None:
    assert is_complete(completion) is expected


# -- stream flags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ({"stream": True}, True),
    ({"stream": False}, False),
    ({"stream": None}, False),
    ({"stream": "true"}, False),
    ({"stream": 1}, False),
    ({}, False),
])
def test_wants_stream(body: dict[str, Any], expected: bool) -> None:
    assert wants_stream(body) is expected


@pytest.mark.parametrize(("body", "expected"), [
    ({"stream": True, "stream_options": {"include_usage": True}}, True),
    ({"stream_options": {"include_usage": False}}, False),
    ({"stream_options": {"include_usage": "true"}}, False),
    ({"stream_options": {"include_usage": 1}}, False),
    ({"stream_options": {}}, False),
    ({"stream_options": None}, False),
    ({"stream_options": [["include_usage", True]]}, False),
    ({}, False),
])
def test_wants_usage_chunk(body: dict[str, Any], expected: bool) -> None:
    assert wants_usage_chunk(body) is expected


@pytest.mark.parametrize(("value", "seconds"), [
    ("stale-while-revalidate=60", 60),
    ("max-age=0, Stale-While-Revalidate=5", 5),
    ('stale-while-revalidate="30"', 30),
    ("stale-while-revalidate=0", None),
    ("no-cache", None),
])
def test_stale_while_revalidate(value: str, seconds: int | None) -> None:
    assert parse_directives({"cache-control": value}).stale_while_revalidate == seconds


@pytest.mark.parametrize("value", ["stale-while-revalidate", "stale-while-revalidate=-1", "stale-while-revalidate=1e3",
                                   "stale-while-revalidate=soon", "stale-while-revalidate=99999999999"])
def test_bad_stale_while_revalidate_is_bad_request(value: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_directives({"cache-control": value})
    assert caught.value.param == "cache-control"


@pytest.mark.parametrize(("control", "window"), [
    ("", 300.0),  # the cache's own window
    ("stale-if-error=60", 60.0),
    ("max-stale=0", 0.0),  # never a stale answer
    ("stale-if-error=600", 300.0),  # never more than the cache keeps
    ("max-stale", 300.0),  # a bare max-stale accepts any staleness
    ("max-stale=120, stale-if-error=30", 30.0),
    ("no-cache, stale-if-error=60", 0.0),  # told not to read the cache
])
def test_the_stale_if_error_window(control: str, window: float) -> None:
    assert parse_directives({"cache-control": control}).stale_window(300) == window


def test_a_bad_stale_if_error_is_a_400() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_directives({"cache-control": "stale-if-error=soon"})
    assert caught.value.param == "cache-control"
