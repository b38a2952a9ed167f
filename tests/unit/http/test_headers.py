"""proxy.headers: which headers cross the proxy in each direction."""

from __future__ import annotations

import pytest

from proxy.http.headers import to_client, to_upstream

CLIENT_HEADERS = [
    ("Host", "localhost:3000"),
    ("Content-Type", "application/json"),
    ("Content-Length", "123"),
    ("Authorization", "Bearer sk-client"),
    ("Accept", "application/json"),
    ("Accept-Encoding", "gzip, br"),
    ("Connection", "keep-alive"),
    ("Keep-Alive", "timeout=5"),
    ("Transfer-Encoding", "chunked"),
    ("TE", "trailers"),
    ("Trailer", "Expires"),
    ("Upgrade", "h2c"),
    ("Proxy-Authorization", "Basic abc"),
    ("Proxy-Connection", "keep-alive"),
    ("User-Agent", "OpenAI/Python 1.40.0"),
    ("OpenAI-Organization", "org-123"),
    ("X-Stainless-Lang", "python"),
    ("x-bypass-cache", "true"),
    ("X-Cache-TTL", "60"),
    ("x-cache-namespace", "team-a"),
    ("Cache-Control", "no-cache"),
    ("X-Request-ID", "req-1"),
]

KEPT_UPSTREAM = [
    ("Content-Type", "application/json"),
    ("Authorization", "Bearer sk-client"),
    ("Accept", "application/json"),
    ("User-Agent", "OpenAI/Python 1.40.0"),
    ("OpenAI-Organization", "org-123"),
    ("X-Stainless-Lang", "python"),
]


def test_to_upstream_drops_hop_by_hop_and_our_own_headers() -> None:
    assert to_upstream(CLIENT_HEADERS, None) == KEPT_UPSTREAM


def test_to_upstream_empty_api_key_keeps_client_credentials() -> None:
    assert to_upstream(CLIENT_HEADERS, "") == KEPT_UPSTREAM


def test_to_upstream_replaces_authorization_with_api_key() -> None:
    assert to_upstream(CLIENT_HEADERS, "sk-upstream") == [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("User-Agent", "OpenAI/Python 1.40.0"),
        ("OpenAI-Organization", "org-123"),
        ("X-Stainless-Lang", "python"),
        ("authorization", "Bearer sk-upstream"),
    ]


def test_to_upstream_api_key_removes_azure_api_key_header() -> None:
    headers = [("api-key", "az-client"), ("authorization", "Bearer sk-client"), ("accept", "*/*")]
    assert to_upstream(headers, "sk-upstream") == [("accept", "*/*"), ("authorization", "Bearer sk-upstream")]


def test_to_upstream_api_key_added_when_client_sent_none() -> None:
    assert to_upstream([("content-type", "application/json")], "sk-upstream") == [
        ("content-type", "application/json"), ("authorization", "Bearer sk-upstream")]


def test_to_upstream_keeps_repeated_headers_and_case() -> None:
    headers = [("X-Custom", "a"), ("x-custom", "b"), ("CONNECTION", "close")]
    assert to_upstream(headers, None) == [("X-Custom", "a"), ("x-custom", "b")]


@pytest.mark.parametrize("name", ["host", "HOST", "content-length", "accept-encoding", "x-bypass-cache",
                                  "x-cache-ttl", "x-cache-namespace", "cache-control", "x-request-id",
                                  "connection", "transfer-encoding"])
def test_to_upstream_drops(name: str) -> None:
    assert to_upstream([(name, "v"), ("accept", "*/*")], None) == [("accept", "*/*")]


UPSTREAM_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", "512"),
    ("Content-Encoding", "gzip"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "keep-alive"),
    ("Date", "Fri, 22 Nov 2024 17:00:00 GMT"),
    ("Server", "cloudflare"),
    ("Set-Cookie", "__cf_bm=abc; path=/"),
    ("OpenAI-Processing-Ms", "412"),
    ("X-Request-ID", "req_abc"),
    ("x-ratelimit-remaining-requests", "9999"),
    ("OpenAI-Version", "2020-10-01"),
]


def test_to_client_drops_encoding_length_and_hop_by_hop() -> None:
    assert to_client(UPSTREAM_HEADERS) == [
        ("content-type", "application/json"),
        ("openai-processing-ms", "412"),
        ("x-upstream-request-id", "req_abc"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("openai-version", "2020-10-01"),
    ]


@pytest.mark.parametrize("name", ["content-encoding", "Content-Length", "date", "server", "set-cookie",
                                  "transfer-encoding", "connection", "keep-alive", "trailer", "upgrade"])
def test_to_client_drops(name: str) -> None:
    assert to_client([(name, "v"), ("Content-Type", "text/event-stream")]) == [("content-type", "text/event-stream")]


def test_to_client_empty() -> None:
    assert to_client([]) == []


# -- issue 10 items 6 and 16 ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Cookie", "cookie", "Expect", "X-Cache", "x-cache-original-id", "X-Cache-Foo",
                                  "HTTP2-Settings"])
def test_to_upstream_drops_cookie_expect_and_every_cachegate_header(name: str) -> None:
    assert to_upstream([(name, "v"), ("accept", "*/*")], None) == [("accept", "*/*")]


def test_to_upstream_drops_headers_named_in_connection() -> None:
    headers = [("Connection", "keep-alive, X-Secret-Hop"), ("connection", " Foo ,bar"), ("x-secret-hop", "1"),
               ("FOO", "2"), ("Bar", "3"), ("baz", "4"), ("accept", "*/*")]
    assert to_upstream(headers, None) == [("baz", "4"), ("accept", "*/*")]


def test_to_upstream_injected_key_survives_connection_naming_authorization() -> None:
    headers = [("connection", "authorization"), ("authorization", "Bearer sk-client")]
    assert to_upstream(headers, "sk-upstream") == [("authorization", "Bearer sk-upstream")]


def test_to_upstream_keeps_gateway_credentials() -> None:
    headers = [("x-api-key", "k"), ("x-portkey-api-key", "p"), ("cf-aig-authorization", "Bearer c"),
               ("Helicone-Auth", "Bearer h"), ("OpenAI-Project", "proj_1")]
    assert to_upstream(headers, "sk-upstream") == [*headers, ("authorization", "Bearer sk-upstream")]


CDN_HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Request-ID", "req_abc"),
    ("X-Cache", "Miss from cloudfront"),
    ("X-Cache-Hits", "0"),
    ("Age", "12"),
    ("Cache-Control", "no-cache, must-revalidate"),
    ("Expires", "0"),
    ("X-Accel-Buffering", "no"),
    ("x-ratelimit-limit", "100"),
    ("x-ratelimit-remaining", "99"),
    ("x-ratelimit-reset", "60"),
    ("x-ratelimit-limit-requests", "10000"),
    ("x-ratelimit-remaining-tokens", "149984"),
    ("X-Upstream-Request-ID", "from-a-proxy-behind"),
    ("Retry-After", "2"),
    ("Via", "1.1 abc.cloudfront.net (CloudFront)"),
]


def test_to_client_strips_what_cachegate_sets_and_renames_the_request_id() -> None:
    assert to_client(CDN_HEADERS) == [
        ("content-type", "application/json"),
        ("x-upstream-request-id", "req_abc"),
        ("cache-control", "no-cache, must-revalidate"),
        ("expires", "0"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("retry-after", "2"),
        ("via", "1.1 abc.cloudfront.net (CloudFront)"),
    ]


def test_to_client_cacheable_also_strips_caching_rules() -> None:
    assert to_client(CDN_HEADERS, cacheable=True) == [
        ("content-type", "application/json"),
        ("x-upstream-request-id", "req_abc"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("retry-after", "2"),
        ("via", "1.1 abc.cloudfront.net (CloudFront)"),
    ]


def test_to_client_drops_headers_named_in_connection() -> None:
    headers = [("Connection", "close, X-Hop"), ("X-Hop", "1"), ("content-type", "text/event-stream")]
    assert to_client(headers) == [("content-type", "text/event-stream")]


def test_to_client_passes_every_upstream_request_id_renamed() -> None:
    assert to_client([("x-request-id", "a"), ("X-Request-Id", "b")]) == [
        ("x-upstream-request-id", "a"), ("x-upstream-request-id", "b")]
