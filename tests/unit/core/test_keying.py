"""Keying a chat request from its bytes and tenant, remembered for small repeated requests."""

from __future__ import annotations

import orjson
import pytest

from proxy.core import canonical
from proxy.core.keying import RequestKeys
from proxy.errors import BadRequestError

ALICE = canonical.Tenant("a" * 64)
BOB = canonical.Tenant("b" * 64)
RAW = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})


def keys(**kwargs: int) -> RequestKeys:
    return RequestKeys(prefix="cg:", upstream="http://up/v1", **kwargs)


def test_the_key_is_the_canonical_one() -> None:
    keyed = keys()(RAW, ALICE)
    body = orjson.loads(RAW)
    digest = canonical.request_digest(body, upstream="http://up/v1", tenant=ALICE)
    assert keyed.key == canonical.exact_key("cg:", ALICE, "m", digest)
    assert keyed.body == body
    assert keyed.stream is True


def test_the_same_bytes_and_tenant_are_keyed_once() -> None:
    memo = keys()
    assert memo(RAW, ALICE) is memo(RAW, ALICE)
    assert memo(RAW, BOB).key != memo(RAW, ALICE).key  # the tenant is part of the key, and of the memo
    spaced = RAW.replace(b",", b", ")
    assert memo(spaced, ALICE) is not memo(RAW, ALICE)
    assert memo(spaced, ALICE).key == memo(RAW, ALICE).key  # other bytes, same canonical request


def test_a_bad_body_raises_every_time() -> None:
    memo = keys()
    for _ in range(2):
        with pytest.raises(BadRequestError, match="'messages' is required"):
            memo(b'{"model": "m"}', ALICE)


def test_only_small_bodies_are_remembered_and_the_oldest_go_first() -> None:
    memo = keys(entries=2, max_bytes=len(RAW))
    big = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 100}]})
    assert memo(big, ALICE) is not memo(big, ALICE)
    first, second, third = (orjson.dumps({"model": f"m{i}", "messages": [{"role": "user", "content": "hi"}]})
                            for i in range(3))
    kept = memo(first, ALICE)
    memo(second, ALICE)
    assert memo(first, ALICE) is kept
    memo(third, ALICE)  # over two entries: the oldest (first) goes
    assert memo(first, ALICE) is not kept


def test_query_and_routing_are_part_of_the_key_and_of_the_memo() -> None:
    memo = keys()
    routing = (("openai-project", "proj_1"),)
    plain, azure, project = memo(RAW, ALICE), memo(RAW, ALICE, query="api-version=1"), memo(RAW, ALICE, routing=routing)
    assert len({plain.key, azure.key, project.key}) == 3
    assert memo(RAW, ALICE, query="") is plain
    assert memo(RAW, ALICE, query="api-version=1") is azure
    digest = canonical.request_digest(orjson.loads(RAW), upstream="http://up/v1", tenant=ALICE, routing=routing)
    assert project.key == canonical.exact_key("cg:", ALICE, "m", digest)
