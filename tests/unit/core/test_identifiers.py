"""proxy.core.identifiers: client request ids (issue 10 item 15) and fresh completion ids (item 5)."""

from __future__ import annotations

import re

import pytest

from proxy.core.identifiers import fresh_completion_id, header_value, is_valid_request_id


@pytest.mark.parametrize("value", ["a", "req-1", "3f2a9c.b:c_d-E", "x" * 128,
                                   "0123456789abcdefABCDEF"])
def test_valid_request_ids(value: str) -> None:
    assert is_valid_request_id(value) is True


@pytest.mark.parametrize("value", ["", "x" * 129, "abc\n", "abc\r\n", "\nabc", "a b", "a/b", "a\tb", "caf\u00e9",
                                   "a\x00", "abc\n\n", "id;x=1"])
def test_invalid_request_ids(value: str) -> None:
    assert is_valid_request_id(value) is False


def test_the_old_check_took_a_trailing_newline() -> None:
    # the middleware's pattern before: ``$`` matches before a final newline
    assert re.compile(r"^[A-Za-z0-9._:-]{1,128}$").match("abc\n") is not None
    assert is_valid_request_id("abc\n") is False


@pytest.mark.parametrize(("original", "expected"), [
    ("chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "chatcmpl-tok"),
    ("gen-1741570283-abc", "gen-tok"),
    ("cmpl-1", "cmpl-tok"),
    ("abc", "chatcmpl-tok"),
    ("-abc", "chatcmpl-tok"),
    ("9-abc", "chatcmpl-tok"),
    ("", "chatcmpl-tok"),
    (None, "chatcmpl-tok"),
    (42, "chatcmpl-tok"),
    ("a" * 40 + "-x", "chatcmpl-tok"),
])
def test_fresh_completion_id(original: object, expected: str) -> None:
    assert fresh_completion_id(original, "tok") == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("chatcmpl-abc", "chatcmpl-abc"),
    ("a b", "a b"),
    ("a", "a"),
    ("x" * 256, "x" * 256),
    ("x" * 257, None),
    ("abc\r\nSet-Cookie: a=b", None),
    (" abc", None),
    ("abc ", None),
    ("", None),
    ("caf\u00e9", None),
    (None, None),
    (7, None),
])
def test_header_value(value: object, expected: str | None) -> None:
    assert header_value(value) == expected
