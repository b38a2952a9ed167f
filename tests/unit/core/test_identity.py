"""The identity template: a stored body cut once around its id and created, filled per hit (exact bytes)."""

from __future__ import annotations

import orjson
import pytest

from proxy.core.identity import identity_template
from proxy.core.replay import refresh_identity


@pytest.mark.parametrize("body", [
    b'{"id":"chatcmpl-abc","object":"chat.completion","created":5,"choices":[]}',
    b'{"created":5,"object":"chat.completion","id":"gen-77","choices":[]}',
    b'{"id":"chatcmpl-abc","choices":[]}',
    b'{ "id" : "chatcmpl-abc" , "created" : 1700000000 }',
])
def test_filling_gives_what_rewriting_the_body_gives(body: bytes) -> None:
    template = identity_template(body)
    assert template is not None
    original = orjson.loads(body)["id"]
    prefix = original.split("-")[0] + "-"
    assert template.id_prefix == prefix and template.original == original
    expected, stored = refresh_identity(body, completion_id=prefix + "f00d", created=99)
    assert template.fill("f00d", 99) == expected and stored == original


def test_exact_pieces_when_created_follows_the_id() -> None:
    template = identity_template(b'{"id":"chatcmpl-1","created":5,"x":1}')
    assert template is not None
    assert template.pieces == (b'{"id":"chatcmpl-', b'","created":', b',"x":1}')
    assert not template.created_first
    assert template.fill("t", 7) == b'{"id":"chatcmpl-t","created":7,"x":1}'


def test_an_id_without_a_prefix_gets_the_default_one() -> None:
    template = identity_template(b'{"id":"12345","created":1}')
    assert template is not None and template.id_prefix == "chatcmpl-"
    assert template.fill("t", 2) == b'{"id":"chatcmpl-t","created":2}'


def test_an_id_that_cannot_be_a_header_value_is_not_offered_as_one() -> None:
    template = identity_template(b'{"id":"chatcmpl-a\\nb"}')
    assert template is not None and template.original == "chatcmpl-a\nb"
    assert template.original_header is None


@pytest.mark.parametrize("body", [b'{"id":7,"created":1}', b'[1,2]', b'{"object":"x"}', b'not json'])
def test_a_body_without_a_string_id_has_no_template(body: bytes) -> None:
    assert identity_template(body) is None


def test_known_spans_and_id_are_taken_as_given() -> None:
    body = b'{"id":"chatcmpl-1","created":5}'
    template = identity_template(body, (6, 18, 29, 30), "chatcmpl-1")
    assert template is not None and template.fill("z", 9) == b'{"id":"chatcmpl-z","created":9}'
