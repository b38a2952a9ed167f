"""proxy.core.paths: /v1 request paths to upstream paths, with no way out of /v1 (issue 10 item 9)."""

from __future__ import annotations

import pytest

from proxy.core.paths import encode_segments, upstream_path, upstream_segments
from proxy.errors import NotFoundError


@pytest.mark.parametrize(("raw", "expected"), [
    ("/v1/models", "/models"),
    ("/v1/models/gpt-4o-mini", "/models/gpt-4o-mini"),
    (b"/v1/files/file-abc123/content", "/files/file-abc123/content"),
    ("/v1/models/ft:gpt-4o-mini:org:custom:id", "/models/ft:gpt-4o-mini:org:custom:id"),
    ("/v1/models/openai%2Fgpt-4o", "/models/openai%2Fgpt-4o"),  # an SDK's model id with a slash: kept encoded
    ("/v1/models/accounts%2ffireworks%2Fmodels%2Fx", "/models/accounts%2Ffireworks%2Fmodels%2Fx"),
    ("/v1/models/a%2F...", "/models/a%2F..."),
    ("/%76%31/models", "/models"),  # an encoded "v1" is still /v1
    ("/v1/a%20b", "/a%20b"),
    ("/v1/caf%C3%A9", "/caf%C3%A9"),
    ("/v1/%41bc", "/Abc"),  # re-encoded: unreserved characters come back plain
    ("/v1/...", "/..."),  # three dots are a name, not a dot segment
    ("/v1/a.b/.c", "/a.b/.c"),
    ("/v1/x;y=1", "/x;y=1"),
])
def test_upstream_path(raw: str | bytes, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(NotFoundError):
            upstream_path(raw)
    else:
        assert upstream_path(raw) == expected


@pytest.mark.parametrize("raw", [
    "/v1/../key/generate",
    "/v1/%2e%2e/key/generate",
    "/v1/%2E%2E/key/generate",
    "/v1/%2E./key",
    "/v1/.%2e/key",
    "/v1/./models",
    "/v1/%2e/models",
    "/v1/models/..",
    "/v1/..;/key",
    "/v1/%2e%2e;x/key",
    "/v1//models",
    "/v1/models/",
    "/v1/",
    "/v1",
    "/v1/models%2f..%2fkey",
    "/v1/%2F",
    "/v1/models/openai%2F",
    "/v1/models/%2Fgpt-4o",
    "/v1/models/a%2F%2Fb",
    "/v1/models/a%2F.%2Fb",
    "/v1/models/a%2F%2e%2E",
    "/v1/models/a%2F..;x",
    "/v1/a%5c..%5ckey",
    "/v1/a\\b",
    "/v1/%252e%252e/key",
    "/v1/a%00b",
    "/v1/a%0d%0aHost:%20evil",
    "/v1/%zz",
    "/v1/%e",
    "/v1/%ff",
    "/v2/models",
    "/v1x/models",
    "/models",
    "v1/models",
    "*",
    "/v1/caf\u00e9",
])
def test_refused(raw: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        upstream_path(raw)
    assert caught.value.status_code == 404
    assert caught.value.code == "not_found"


def test_refusal_names_the_path_and_why() -> None:
    with pytest.raises(NotFoundError) as caught:
        upstream_path("/v1/%2e%2e/key/generate")
    assert caught.value.message == "No such path: '/v1/%2e%2e/key/generate' (dot segment)."


def test_segments_are_decoded() -> None:
    assert upstream_segments("/v1/a%20b/caf%C3%A9") == ["a b", "caf\u00e9"]
    assert upstream_segments("/v1/models/openai%2Fgpt-4o") == ["models", "openai/gpt-4o"]


def test_an_encoded_slash_that_would_climb_is_named() -> None:
    with pytest.raises(NotFoundError) as caught:
        upstream_path("/v1/models%2F..%2Fkey")
    assert caught.value.message == "No such path: '/v1/models%2F..%2Fkey' (dot segment)."


def test_other_prefix() -> None:
    assert upstream_segments("/openai/deployments/d1", prefix=("openai",)) == ["deployments", "d1"]


def test_encode_segments_escapes_what_a_segment_cannot_hold() -> None:
    assert encode_segments(["a b", "x?y#z", "100%", "caf\u00e9", "k=v;p", "u@h:1"]) == \
        "/a%20b/x%3Fy%23z/100%25/caf%C3%A9/k=v;p/u@h:1"


@pytest.mark.parametrize("raw", ["/v1/models", "/v1/a%20b/c", "/v1/x%3Fy", "/v1/caf%C3%A9", "/v1/models/o%2Fm"])
def test_what_the_upstream_decodes_is_what_was_checked(raw: str) -> None:
    path = upstream_path(raw)
    assert upstream_segments("/v1" + path) == upstream_segments(raw)
