"""proxy.http.params: a route's declared parameters, and the 400 naming any other (issue 10.21)."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequestError
from proxy.http.params import check_names, check_query

DECLARED = frozenset({"tier", "model", "namespace"})


def test_declared_parameters_are_read_once_each() -> None:
    assert check_query(b"tier=exact&model=gpt-4o&namespace=", DECLARED, "POST /x") == \
        {"tier": "exact", "model": "gpt-4o", "namespace": ""}
    assert check_query(b"", DECLARED, "POST /x") == {}
    assert check_query(b"", frozenset(), "GET /y") == {}


@pytest.mark.parametrize(("query", "param", "code", "message"), [
    (b"pattern=gpt-*", "pattern", "unknown_parameter",
     "Unknown parameter 'pattern' for POST /x; it takes model, namespace, tier."),
    (b"pattern", "pattern", "unknown_parameter",
     "Unknown parameter 'pattern' for POST /x; it takes model, namespace, tier."),
    (b"z=1&a=2&tier=exact", "a", "unknown_parameter",
     "Unknown parameters 'a', 'z' for POST /x; it takes model, namespace, tier."),
    (b"model=a&model=b", "model", "repeated_parameter", "Parameter 'model' is given more than once for POST /x."),
])
def test_anything_else_is_named(query: bytes, param: str, code: str, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        check_query(query, DECLARED, "POST /x")
    assert (caught.value.param, caught.value.code, caught.value.message) == (param, code, message)
    assert caught.value.status_code == 400


def test_a_route_that_takes_none_says_so() -> None:
    with pytest.raises(BadRequestError) as caught:
        check_names(["force"], frozenset(), "GET /admin/stats")
    assert caught.value.message == "Unknown parameter 'force' for GET /admin/stats; it takes none."
