"""proxy.admin.warm.parse_batch: the accepted shapes of a warm request."""

from __future__ import annotations

import orjson
import pytest

from proxy.admin.warm import MAX_CONCURRENCY, MAX_REQUESTS, parse_batch
from proxy.errors import BadRequestError

ONE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
TWO = {"model": "m", "messages": [{"role": "user", "content": "yo"}]}


def test_json_array() -> None:
    batch = parse_batch(orjson.dumps([ONE, TWO]), "application/json", {})
    assert batch.requests == [ONE, TWO] and batch.concurrency == 4


def test_object_with_requests_and_concurrency() -> None:
    batch = parse_batch(orjson.dumps({"requests": [ONE], "concurrency": 2}), "application/json", {})
    assert batch.requests == [ONE] and batch.concurrency == 2


def test_a_single_request_object() -> None:
    assert parse_batch(orjson.dumps(ONE), "application/json", {}).requests == [ONE]


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/jsonl", "text/plain", "",
                                          "application/json"])
def test_json_lines(content_type: str) -> None:
    raw = orjson.dumps(ONE) + b"\n\n" + orjson.dumps(TWO) + b"\n"
    assert parse_batch(raw, content_type, {"concurrency": "8"}).requests == [ONE, TWO]
    assert parse_batch(raw, content_type, {"concurrency": "8"}).concurrency == 8


@pytest.mark.parametrize(("raw", "query", "code"), [
    (b"[]", {}, "invalid_body"),
    (b"{\"requests\": []}", {}, "invalid_body"),
    (b"42", {}, "invalid_body"),
    (b"{\"a\": 1}\nnot json", {}, "invalid_json"),
    (orjson.dumps([ONE]), {"concurrency": "0"}, None),
    (orjson.dumps([ONE]), {"concurrency": str(MAX_CONCURRENCY + 1)}, None),
    (orjson.dumps([ONE]), {"concurrency": "many"}, None),
    (orjson.dumps([ONE] * (MAX_REQUESTS + 1)), {}, "too_many_requests"),
])
def test_refused(raw: bytes, query: dict[str, str], code: str | None) -> None:
    with pytest.raises(BadRequestError) as info:
        parse_batch(raw, "application/json", query)
    if code is not None:
        assert info.value.code == code
