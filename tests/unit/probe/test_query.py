"""Query parameters: every bad value and unknown name, collected into one 400 that names them."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequestError
from proxy.probe.query import Query


def test_good_values() -> None:
    query = Query({"from": "1970-01-02", "to": "172800", "limit": "5", "format": "jsonl", "model": " m "},
                  ("from", "to", "limit", "format", "model"))
    assert query.window(now=1e6, default_seconds=10) == (86400.0, 172800.0)
    assert (query.integer("limit", 1, 10, 3), query.choice("format", ("json", "jsonl"), "json"),
            query.text("model")) == (5, "jsonl", "m")
    query.check()


def test_defaults() -> None:
    query = Query({}, ("from", "to", "limit"))
    assert query.window(now=1000.0, default_seconds=100) == (900.0, None)  # no end: up to now, now included
    assert query.integer("limit", 1, 10, 3) == 3
    query.check()


def test_every_problem_is_named() -> None:
    query = Query({"from": "yesterday", "limit": "0", "format": "xml", "modle": "m"}, ("from", "limit", "format"))
    query.window(now=1000.0, default_seconds=100)
    query.integer("limit", 1, 1000, 100)
    query.choice("format", ("json", "jsonl"), "json")
    with pytest.raises(BadRequestError) as caught:
        query.check()
    error = caught.value
    assert error.status_code == 400 and error.code == "invalid_query"
    assert set(error.param.split(",")) == {"from", "limit", "format", "modle"}  # type: ignore[union-attr]
    assert "'from' must be an ISO 8601 date or date-time, or Unix seconds; got 'yesterday'" in error.message
    assert "'limit' must be a whole number from 1 to 1000; got '0'" in error.message
    assert "'format' must be one of json, jsonl; got 'xml'" in error.message
    assert "unknown query parameter 'modle' (known: from, limit, format)" in error.message


def test_from_after_to() -> None:
    query = Query({"from": "200", "to": "100"}, ("from", "to"))
    query.window(now=1000.0, default_seconds=100)
    with pytest.raises(BadRequestError, match="'from' must not be later than 'to'"):
        query.check()


def test_a_route_without_parameters_refuses_any() -> None:
    with pytest.raises(BadRequestError, match=r"unknown query parameter 'x' \(none is taken\)"):
        Query({"x": "1"}, ()).check()
