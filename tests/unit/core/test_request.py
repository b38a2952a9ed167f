"""The chat request parser: what the read headers decide is worked out once per distinct set of them."""

from __future__ import annotations

import orjson
import pytest

from proxy.core.request import ChatRequestParser
from proxy.errors import BadRequestError

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def parser(secret: bytes = b"s") -> ChatRequestParser:
    return ChatRequestParser(prefix="cg:", upstream="http://up/v1", shared=False, secret=lambda: secret)


def test_the_same_headers_decide_once_and_alike() -> None:
    p = parser()
    headers = [(b"authorization", b"Bearer sk-a"), (b"x-cache-ttl", b"60"), (b"user-agent", b"sdk")]
    first = p.parse(BODY, headers)
    again = p.parse(BODY, [*headers[:2], (b"user-agent", b"another sdk")])  # a header not read: the same front
    assert again.tenant is first.tenant and again.directives is first.directives
    assert (first.directives.ttl, first.api_key_hash) == (60, again.api_key_hash)
    assert len(p._fronts) == 1


def test_other_credentials_or_directives_are_other_fronts() -> None:
    p = parser()
    alice = p.parse(BODY, [(b"authorization", b"Bearer sk-a")])
    bob = p.parse(BODY, [(b"authorization", b"Bearer sk-b")])
    fresh = p.parse(BODY, [(b"authorization", b"Bearer sk-a"), (b"cache-control", b"no-cache")])
    assert alice.tenant.owner != bob.tenant.owner and alice.key != bob.key
    assert alice.directives.read and not fresh.directives.read and fresh.tenant == alice.tenant


def test_the_owner_depends_on_the_secret() -> None:
    headers = [(b"authorization", b"Bearer sk-a")]
    assert parser(b"one").parse(BODY, headers).tenant != parser(b"two").parse(BODY, headers).tenant


def test_a_bad_header_raises_every_time_and_is_not_kept() -> None:
    p = parser()
    for _ in range(2):
        with pytest.raises(BadRequestError) as raised:
            p.parse(BODY, [(b"x-cache-ttl", b"soon")])
        assert raised.value.param == "x-cache-ttl"
    assert p._fronts == {}
