"""proxy.core.canonical: canonical form of a chat request and the cache keys derived from it."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable
from typing import Any

import pytest

from proxy.core.canonical import (
    DEFAULT_CREDENTIAL_HEADERS,
    DEFAULT_ROUTING_HEADERS,
    IGNORED_FIELDS,
    KEY_VERSION,
    Tenant,
    api_key_of,
    canonical_bytes,
    credential_of,
    exact_key,
    exact_pattern,
    hash_api_key,
    last_user_text,
    model_id,
    named_headers,
    namespace_id,
    normalise,
    request_digest,
    semantic_scope,
    tenant_for,
    tenant_hash,
)

UPSTREAM = "https://api.openai.com/v1"
SHARED = Tenant(owner="shared")
# sha256("sk-test"), sha256("team-a")[:12], sha256("gpt-4o-mini")[:12]
SK_TEST_HASH = "f3abf2a6cc4f00987743db5f544ba345b4899ae31f326d8ee9c4816de153c9e0"
TEAM_A_ID = "96c2886c51d1"
GPT_4O_MINI_ID = "8a4342806269"

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look a word up.",
                                           "parameters": {"type": "object",
                                                          "properties": {"word": {"type": "string"}}}}}]


def full_request() -> dict[str, Any]:
    """A request that sets every output-affecting field, so each one can be changed on its own."""
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 100,
        "max_completion_tokens": 100,
        "tools": copy.deepcopy(TOOLS),
        "tool_choice": "auto",
        "response_format": {"type": "text"},
        "seed": 7,
        "n": 1,
        "stop": ["\n"],
        "logprobs": False,
        "top_logprobs": 0,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "logit_bias": {"1234": -100},
        "reasoning_effort": "low",
        "parallel_tool_calls": True,
    }


def digest(body: dict[str, Any], *, upstream: str = UPSTREAM, tenant: Tenant = SHARED) -> str:
    return request_digest(body, upstream=upstream, tenant=tenant)


def scope(body: dict[str, Any], *, upstream: str = UPSTREAM, tenant: Tenant = SHARED) -> str:
    return semantic_scope(body, upstream=upstream, tenant=tenant)


# -- normalise / canonical_bytes ------------------------------------------------------------------


def test_normalise_whole_float_becomes_int() -> None:
    assert normalise(1.0) == 1
    assert type(normalise(1.0)) is int
    assert type(normalise(-3.0)) is int
    assert type(normalise(-0.0)) is int


def test_normalise_keeps_fractional_floats() -> None:
    assert normalise(0.7) == 0.7
    assert type(normalise(0.7)) is float


def test_normalise_nested() -> None:
    result = normalise({"a": [1.0, 2.5, {"b": 3.0, "c": "4.0"}], "d": {"e": [[0.0]]}})
    assert result == {"a": [1, 2.5, {"b": 3, "c": "4.0"}], "d": {"e": [[0]]}}
    assert type(result["a"][0]) is int
    assert type(result["a"][2]["b"]) is int
    assert type(result["d"]["e"][0][0]) is int


@pytest.mark.parametrize("value", [True, False, None, "1.0", 1])
def test_normalise_leaves_non_floats_alone(value: Any) -> None:
    assert normalise(value) is value


def test_normalise_bools_inside_containers_untouched() -> None:
    result = normalise({"logprobs": True, "xs": [False, 1.0]})
    assert result["logprobs"] is True
    assert result["xs"][0] is False
    assert type(result["xs"][1]) is int


def test_normalise_large_floats_stay_float() -> None:
    # at and beyond 2**53 a float no longer stands for exactly one integer
    assert type(normalise(1e20)) is float
    assert normalise(1e20) == 1e20
    assert type(normalise(float(2**53))) is float
    assert type(normalise(-float(2**53))) is float
    assert normalise(float(2**53 - 1)) == 2**53 - 1
    assert type(normalise(float(2**53 - 1))) is int


def test_canonical_bytes_exact() -> None:
    assert canonical_bytes({"b": 1, "a": {"d": 2.0, "c": [1.0, 0.5]}}) == b'{"a":{"c":[1,0.5],"d":2},"b":1}'


def test_canonical_bytes_key_order_independent() -> None:
    one = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1}
    two = {"temperature": 1.0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert canonical_bytes(one) == canonical_bytes(two)


def test_canonical_bytes_list_order_matters() -> None:
    assert canonical_bytes({"stop": ["a", "b"]}) != canonical_bytes({"stop": ["b", "a"]})


# -- request_digest ---------------------------------------------------------------------------------


def test_request_digest_pinned_value() -> None:
    """A fixed request must always give this digest; a change means every stored key changes."""
    body = {"model": "gpt-4o-mini", "temperature": 0,
            "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]}
    assert KEY_VERSION == 1
    assert digest(body) == "e38a372293300fa601d4f631de7f6a43e0077049f4fc028c25a4118d3e688d88"


def test_request_digest_is_hex_sha256() -> None:
    value = digest(full_request())
    assert len(value) == 64
    assert set(value) <= set("0123456789abcdef")


def test_request_digest_same_for_reordered_keys_and_equal_numbers() -> None:
    body = full_request()
    reordered = dict(reversed(list(copy.deepcopy(body).items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in reordered["messages"]]
    reordered["tools"][0]["function"] = dict(reversed(list(reordered["tools"][0]["function"].items())))
    reordered["max_tokens"] = 100.0
    reordered["presence_penalty"] = 0.0
    reordered["n"] = 1.0
    assert list(reordered) != list(body)
    assert digest(reordered) == digest(body)


def test_request_digest_one_and_one_point_zero_equal() -> None:
    assert digest({"model": "m", "messages": [], "temperature": 1}) == \
        digest({"model": "m", "messages": [], "temperature": 1.0})


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body[field] = value
    return change


def _message(index: int, content: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body["messages"][index]["content"] = content
    return change


def _tool_description(body: dict[str, Any]) -> None:
    body["tools"][0]["function"]["description"] = "Look a word up in the dictionary."


def _drop(field: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        del body[field]
    return change


OUTPUT_AFFECTING_CHANGES = [
    pytest.param(_set("model", "gpt-4o"), id="model"),
    pytest.param(_message(3, "And 4+4?"), id="last-user-content"),
    pytest.param(_message(0, "You are verbose."), id="system-prompt"),
    pytest.param(_message(1, "What is 2+3?"), id="earlier-user-turn"),
    pytest.param(_message(2, "four"), id="earlier-assistant-turn"),
    pytest.param(_set("temperature", 0.3), id="temperature"),
    pytest.param(_drop("temperature"), id="temperature-absent"),
    pytest.param(_set("top_p", 0.5), id="top_p"),
    pytest.param(_set("max_tokens", 101), id="max_tokens"),
    pytest.param(_set("max_completion_tokens", 99), id="max_completion_tokens"),
    pytest.param(_tool_description, id="tools"),
    pytest.param(_set("tool_choice", "required"), id="tool_choice"),
    pytest.param(_set("response_format", {"type": "json_object"}), id="response_format"),
    pytest.param(_set("seed", 8), id="seed"),
    pytest.param(_set("n", 2), id="n"),
    pytest.param(_set("stop", ["\n\n"]), id="stop"),
    pytest.param(_set("logprobs", True), id="logprobs"),
    pytest.param(_set("top_logprobs", 3), id="top_logprobs"),
    pytest.param(_set("presence_penalty", 0.5), id="presence_penalty"),
    pytest.param(_set("frequency_penalty", 0.5), id="frequency_penalty"),
    pytest.param(_set("logit_bias", {"1234": 100}), id="logit_bias"),
    pytest.param(_set("reasoning_effort", "high"), id="reasoning_effort"),
    pytest.param(_set("parallel_tool_calls", False), id="parallel_tool_calls"),
    pytest.param(_set("modalities", ["text"]), id="unknown-new-field"),
]


@pytest.mark.parametrize("change", OUTPUT_AFFECTING_CHANGES)
def test_request_digest_differs_for_each_output_affecting_field(change: Callable[[dict[str, Any]], None]) -> None:
    changed = full_request()
    change(changed)
    assert changed != full_request()
    assert digest(changed) != digest(full_request())


def test_ignored_fields_are_the_documented_set() -> None:
    assert frozenset({"stream", "stream_options", "user", "safety_identifier", "metadata", "store",
                      "prompt_cache_key"}) == IGNORED_FIELDS


@pytest.mark.parametrize(("field", "value"), [
    ("stream", True),
    ("stream_options", {"include_usage": True}),
    ("user", "user-1234"),
    ("safety_identifier", "abc"),
    ("metadata", {"job": "nightly"}),
    ("store", True),
    ("prompt_cache_key", "route-7"),
])
def test_request_digest_ignores_ignored_field(field: str, value: Any) -> None:
    with_field = {**full_request(), field: value}
    assert digest(with_field) == digest(full_request())


def test_request_digest_ignores_all_ignored_fields_together() -> None:
    noisy = {**full_request(), "stream": True, "stream_options": {"include_usage": True}, "user": "u",
             "metadata": {"a": "b"}, "store": False, "safety_identifier": "s", "prompt_cache_key": "p"}
    assert digest(noisy) == digest(full_request())


def test_request_digest_differs_by_upstream() -> None:
    assert digest(full_request(), upstream="https://api.openai.com/v1") != \
        digest(full_request(), upstream="https://example.test/v1")


def test_request_digest_differs_by_owner() -> None:
    assert digest(full_request(), tenant=Tenant(owner="a" * 64)) != digest(full_request(), tenant=Tenant("b" * 64))
    assert digest(full_request(), tenant=Tenant("shared")) != digest(full_request(), tenant=Tenant("anonymous"))


def test_request_digest_differs_by_namespace() -> None:
    assert digest(full_request(), tenant=Tenant("shared", "team-a")) != \
        digest(full_request(), tenant=Tenant("shared", "team-b"))
    assert digest(full_request(), tenant=Tenant("shared", "")) != \
        digest(full_request(), tenant=Tenant("shared", "team-a"))


def test_request_digest_does_not_mutate_body() -> None:
    body = {**full_request(), "stream": True}
    before = copy.deepcopy(body)
    digest(body)
    assert body == before


# -- keys -------------------------------------------------------------------------------------------


def test_ids() -> None:
    assert model_id("gpt-4o-mini") == GPT_4O_MINI_ID
    assert namespace_id("team-a") == TEAM_A_ID
    assert namespace_id("") == "-"
    assert hash_api_key("sk-test") == SK_TEST_HASH
    assert hash_api_key(None) is None
    assert hash_api_key("") is None


def test_tenant_ids() -> None:
    tenant = Tenant(owner=SK_TEST_HASH, namespace="team-a")
    assert tenant.owner_id == "f3abf2a6cc4f0098"
    assert tenant.namespace_id == TEAM_A_ID
    assert Tenant(owner="shared").owner_id == "shared"
    assert Tenant(owner="shared").namespace_id == "-"


def test_exact_key_layout() -> None:
    tenant = Tenant(owner=SK_TEST_HASH, namespace="team-a")
    assert exact_key("cachegate:", tenant, "gpt-4o-mini", "d" * 64) == \
        f"cachegate:exact:f3abf2a6cc4f0098:{TEAM_A_ID}:{GPT_4O_MINI_ID}:{{{'d' * 64}}}"


def test_the_hash_tag_is_the_digest_alone() -> None:
    """In a cluster the slot comes from the braces: the digest, never the tenant or the model."""
    key = exact_key("cachegate:", Tenant(owner=SK_TEST_HASH, namespace="team-a"), "gpt-4o-mini", "abc")
    assert key.count("{") == key.count("}") == 1
    assert key[key.index("{") + 1:key.index("}")] == "abc"


def test_exact_key_without_namespace() -> None:
    assert exact_key("p:", Tenant("anonymous"), "gpt-4o-mini", "abc") == f"p:exact:anonymous:-:{GPT_4O_MINI_ID}:{{abc}}"


@pytest.mark.parametrize(("model", "namespace", "expected"), [
    (None, None, "cachegate:exact:*:*:*:*"),
    ("gpt-4o-mini", None, f"cachegate:exact:*:*:{GPT_4O_MINI_ID}:*"),
    (None, "team-a", f"cachegate:exact:*:{TEAM_A_ID}:*:*"),
    ("gpt-4o-mini", "team-a", f"cachegate:exact:*:{TEAM_A_ID}:{GPT_4O_MINI_ID}:*"),
    (None, "", "cachegate:exact:*:-:*:*"),
])
def test_exact_pattern(model: str | None, namespace: str | None, expected: str) -> None:
    assert exact_pattern("cachegate:", model=model, namespace=namespace) == expected


def test_exact_pattern_selects_matching_keys() -> None:
    keys = {
        "a": exact_key("cachegate:", Tenant(SK_TEST_HASH, "team-a"), "gpt-4o-mini", "1" * 64),
        "b": exact_key("cachegate:", Tenant(SK_TEST_HASH, "team-b"), "gpt-4o-mini", "2" * 64),
        "c": exact_key("cachegate:", Tenant("shared", "team-a"), "gpt-4o", "3" * 64),
        "d": exact_key("cachegate:", Tenant("shared"), "gpt-4o", "4" * 64),
        "other-prefix": exact_key("other:", Tenant("shared", "team-a"), "gpt-4o-mini", "5" * 64),
    }

    def selected(**narrow: str) -> set[str]:
        pattern = exact_pattern("cachegate:", **narrow)
        return {name for name, key in keys.items() if fnmatch.fnmatchcase(key, pattern)}

    assert selected() == {"a", "b", "c", "d"}
    assert selected(model="gpt-4o-mini") == {"a", "b"}
    assert selected(namespace="team-a") == {"a", "c"}
    assert selected(model="gpt-4o", namespace="team-a") == {"c"}
    assert selected(namespace="") == {"d"}


# -- api keys and tenants ---------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"authorization": "Bearer sk-1"}, "sk-1"),
    ({"authorization": "bearer sk-1"}, "sk-1"),
    ({"authorization": "BEARER   sk-1  "}, "sk-1"),
    ({"api-key": "az-1"}, "az-1"),
    ({"authorization": "Bearer sk-1", "api-key": "az-1"}, "sk-1"),
    ({"authorization": "Basic dXNlcjpwYXNz", "api-key": "az-1"}, "az-1"),
    ({"authorization": "Basic dXNlcjpwYXNz"}, None),
    ({}, None),
    ({"authorization": ""}, None),
    ({"authorization": "Bearer"}, None),
    ({"authorization": "Bearer    "}, None),
    ({"api-key": ""}, None),
])
def test_api_key_of(headers: dict[str, str], expected: str | None) -> None:
    assert api_key_of(headers) == expected


@pytest.mark.parametrize(("key_hash", "namespace", "shared", "expected"), [
    (SK_TEST_HASH, None, True, Tenant("shared", "")),
    (None, "team-a", True, Tenant("shared", "team-a")),
    (None, None, False, Tenant("anonymous", "")),
    (SK_TEST_HASH, None, False, Tenant(SK_TEST_HASH, "")),
    (SK_TEST_HASH, "  team-a \t", False, Tenant(SK_TEST_HASH, "team-a")),
    (SK_TEST_HASH, "   ", False, Tenant(SK_TEST_HASH, "")),
])
def test_tenant_for(key_hash: str | None, namespace: str | None, shared: bool, expected: Tenant) -> None:
    assert tenant_for(key_hash, namespace, shared=shared) == expected


# -- semantic scope ---------------------------------------------------------------------------------


def test_semantic_scope_equal_when_only_last_user_wording_differs() -> None:
    other = full_request()
    other["messages"][3]["content"] = "What do you get when you add three and three?"
    assert scope(other) == scope(full_request())
    assert digest(other) != digest(full_request())


def test_semantic_scope_ignores_ignored_fields() -> None:
    assert scope({**full_request(), "stream": True, "user": "x"}) == scope(full_request())


@pytest.mark.parametrize("change", [
    pytest.param(_message(0, "You are verbose."), id="system-prompt"),
    pytest.param(_message(1, "What is 2+3?"), id="earlier-user-turn"),
    pytest.param(_message(2, "four"), id="earlier-assistant-turn"),
    pytest.param(_set("model", "gpt-4o"), id="model"),
    pytest.param(_set("temperature", 0.9), id="temperature"),
    pytest.param(_set("max_tokens", 5), id="max_tokens"),
])
def test_semantic_scope_differs(change: Callable[[dict[str, Any]], None]) -> None:
    changed = full_request()
    change(changed)
    assert scope(changed) != scope(full_request())


def test_semantic_scope_differs_by_tenant_and_upstream() -> None:
    assert scope(full_request(), tenant=Tenant("a" * 64)) != scope(full_request(), tenant=Tenant("b" * 64))
    assert scope(full_request(), tenant=Tenant("shared", "x")) != scope(full_request(), tenant=Tenant("shared", "y"))
    assert scope(full_request(), upstream="https://a.test/v1") != scope(full_request(), upstream="https://b.test/v1")


def test_semantic_scope_does_not_mutate_body() -> None:
    body = full_request()
    scope(body)
    assert body == full_request()


def test_semantic_scope_is_digest_with_last_user_content_blanked() -> None:
    blanked = full_request()
    blanked["messages"][3]["content"] = None
    assert scope(full_request()) == digest(blanked)


def test_semantic_scope_without_user_message_is_plain_digest() -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "s"}]}
    assert scope(body) == digest(body)


# -- last_user_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("messages", "expected"), [
    ([{"role": "user", "content": "hello"}], "hello"),
    ([{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
      {"role": "user", "content": "second"}], "second"),
    ([{"role": "user", "content": "question"}, {"role": "assistant", "content": "answer"}], "question"),
    ([{"role": "user", "content": [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}]}],
     "line one\nline two"),
    ([{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                   {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}], None),
    ([{"role": "user", "content": [{"type": "text", "text": None}]}], None),
    ([{"role": "user", "content": None}], None),
    ([{"role": "user", "content": ""}], ""),
    ([{"role": "user", "content": []}], ""),
    ([{"role": "system", "content": "only a system prompt"}], None),
    ([], None),
])
def test_last_user_text(messages: list[dict[str, Any]], expected: str | None) -> None:
    assert last_user_text({"model": "m", "messages": messages}) == expected


def test_last_user_text_without_messages_field() -> None:
    assert last_user_text({"model": "m"}) is None


# -- issue 10 item 7: the query string is part of the key ----------------------------------------------

PINNED_BODY = {"model": "gpt-4o-mini", "temperature": 0,
               "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]}


def test_empty_query_and_routing_keep_the_pinned_digest() -> None:
    assert request_digest(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED, query="", routing=()) == \
        "e38a372293300fa601d4f631de7f6a43e0077049f4fc028c25a4118d3e688d88"


def test_request_digest_with_query_pinned() -> None:
    assert request_digest(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED, query="api-version=2024-10-21") == \
        "ebfa11d02058d766a80bcab51e84109796106a378cbf53d59bd516ebee496d8c"


def test_request_digest_differs_by_query() -> None:
    versions = {request_digest(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED, query=query)
                for query in ["", "api-version=2024-10-21", "api-version=2024-02-01", "api-version=2024-10-21&x=1",
                              "x=1&api-version=2024-10-21"]}
    assert len(versions) == 5  # as sent: another spelling is a miss, never a wrong answer


def test_semantic_scope_differs_by_query_and_routing() -> None:
    plain = semantic_scope(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED)
    assert semantic_scope(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED, query="") == plain
    assert semantic_scope(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED, query="api-version=1") != plain
    assert semantic_scope(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED,
                          routing=(("openai-project", "proj_1"),)) != plain


# -- issue 10 item 12: routing headers into the key, credential headers into the tenant -------------------


def test_default_header_lists() -> None:
    assert DEFAULT_CREDENTIAL_HEADERS == ("x-api-key", "x-portkey-api-key", "cf-aig-authorization", "helicone-auth")
    assert DEFAULT_ROUTING_HEADERS == ("openai-organization", "openai-project", "x-portkey-provider",
                                       "x-portkey-config", "anthropic-version")


def test_named_headers_sorted_lower_case_present_only() -> None:
    headers = {"openai-project": "proj_1", "anthropic-version": "2023-06-01", "content-type": "application/json",
               "openai-organization": ""}
    assert named_headers(headers, ["OpenAI-Project", " anthropic-version ", "openai-organization", "x-portkey-config",
                                   "", "openai-project"]) == (
        ("anthropic-version", "2023-06-01"), ("openai-organization", ""), ("openai-project", "proj_1"))


def test_request_digest_with_routing_pinned() -> None:
    assert request_digest(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED,
                          routing=(("openai-organization", "org-1"),)) == \
        "7f58765824a581b1eb48d8f6417ff775d01fda59bda358d11301dd465085b466"


def test_request_digest_differs_by_each_routing_header_value() -> None:
    digests = set()
    for name in DEFAULT_ROUTING_HEADERS:
        for value in ("a", "b"):
            routing = named_headers({name: value}, DEFAULT_ROUTING_HEADERS)
            digests.add(request_digest(PINNED_BODY, upstream=UPSTREAM, tenant=SHARED, routing=routing))
    assert len(digests) == 2 * len(DEFAULT_ROUTING_HEADERS)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"authorization": "Bearer sk-x"}, "sk-x"),
    ({}, None),
    ({"x-api-key": "gw-1"}, '\0[null,[["x-api-key","gw-1"]]]'),
    ({"authorization": "Bearer placeholder", "x-portkey-api-key": "pk", "helicone-auth": "Bearer h"},
     '\0["placeholder",[["helicone-auth","Bearer h"],["x-portkey-api-key","pk"]]]'),
    ({"api-key": "az", "cf-aig-authorization": "Bearer cf"}, '\0["az",[["cf-aig-authorization","Bearer cf"]]]'),
])
def test_credential_of(headers: dict[str, str], expected: str | None) -> None:
    assert credential_of(headers) == expected


def test_gateway_clients_with_one_placeholder_key_are_different_tenants() -> None:
    secret = b"cachegate-test-secret"
    owners = {tenant_hash(secret, credential_of({"authorization": "Bearer placeholder", "x-api-key": key}))
              for key in ("client-a", "client-b")}
    assert len(owners) == 2


def test_credential_of_with_configured_names() -> None:
    headers = {"authorization": "Bearer sk-x", "x-team-key": "t1", "x-api-key": "k"}
    assert credential_of(headers, ["X-Team-Key"]) == '\0["sk-x",[["x-team-key","t1"]]]'
    assert credential_of(headers, []) == "sk-x"


# -- issue 10 item 13: HMAC with a per-install secret ------------------------------------------------------


def test_tenant_hash_is_hmac_sha256() -> None:
    # RFC 4231 test case 1
    assert tenant_hash(b"\x0b" * 20, "Hi There") == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    # openssl dgst -sha256 -hmac cachegate-test-secret <<< -n sk-test
    assert tenant_hash(b"cachegate-test-secret", "sk-test") == \
        "b88f99a6a25ad85ab8e80c31c334de82a26f5aa551b96c2755b707a3e744b756"


def test_tenant_hash_is_not_the_unsalted_hash() -> None:
    assert tenant_hash(b"cachegate-test-secret", "sk-test") != hash_api_key("sk-test") == SK_TEST_HASH


def test_tenant_hash_differs_by_secret() -> None:
    assert tenant_hash(b"install-1", "ollama") != tenant_hash(b"install-2", "ollama")


def test_tenant_hash_without_credential_is_none() -> None:
    assert tenant_hash(b"s", None) is None
    assert tenant_hash(b"s", "") is None


def test_tenant_hash_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="the tenant secret is empty"):
        tenant_hash(b"", "sk-test")
