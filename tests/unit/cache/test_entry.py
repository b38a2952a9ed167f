"""proxy.cache.entry: the stored envelope around a cached completion."""

from __future__ import annotations

import base64
import random
import struct
import zlib
from typing import Any

import orjson
import pytest

from proxy.cache.entry import COMPRESS_ABOVE, FLAG_ZLIB, VERSION, CachedResponse, EntryFormatError

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "logprobs": None,
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    "system_fingerprint": "fp_1",
}


def entry_with_body(body: bytes) -> CachedResponse:
    return CachedResponse(body, "gpt-4o-mini", 1000.0, 60)


def flags_of(data: bytes) -> int:
    return data[1]


def random_bytes(n: int) -> bytes:
    return random.Random(1234).randbytes(n)


def test_constants() -> None:
    assert (VERSION, FLAG_ZLIB, COMPRESS_ABOVE) == (1, 1, 4096)


def test_encode_exact_bytes() -> None:
    entry = CachedResponse(b'{"a":1}', "m", 1000.5, 60)
    meta = b'{"model":"m","stored_at":1000.5,"ttl":60}'
    assert entry.encode() == b"\x01\x00" + struct.pack(">II", len(meta), 7) + meta + b'{"a":1}'
    assert entry.encode()[:10] == b"\x01\x00\x00\x00\x00\x29\x00\x00\x00\x07"


def test_round_trip() -> None:
    entry = CachedResponse.from_completion(COMPLETION, model="gpt-4o-mini", stored_at=1700000123.25, ttl=3600,
                                           tier="exact", similarity=0.93)
    decoded = CachedResponse.decode(entry.encode())
    assert decoded == entry
    assert decoded.body == orjson.dumps(COMPLETION)
    assert decoded.model == "gpt-4o-mini"
    assert decoded.stored_at == 1700000123.25
    assert decoded.ttl == 3600
    assert decoded.meta == {"tier": "exact", "similarity": 0.93}
    assert decoded.completion == COMPLETION


def test_decode_types() -> None:
    decoded = CachedResponse.decode(CachedResponse(b"{}", "m", 1000, 60).encode())
    assert type(decoded.stored_at) is float
    assert type(decoded.ttl) is int


def test_body_is_kept_byte_for_byte() -> None:
    raw = b'{ "id" : "x",  "choices": [] }'  # not orjson's formatting: must come back as it was
    assert CachedResponse.decode(entry_with_body(raw).encode()).body == raw


def test_completion_and_usage() -> None:
    entry = CachedResponse(orjson.dumps(COMPLETION), "m", 0.0, 1)
    assert entry.completion == COMPLETION
    assert entry.usage == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


@pytest.mark.parametrize("usage", [None, "many", [1, 2]])
def test_usage_not_a_dict_is_empty(usage: Any) -> None:
    entry = CachedResponse(orjson.dumps({**COMPLETION, "usage": usage}), "m", 0.0, 1)
    assert entry.usage == {}


def test_usage_missing_is_empty() -> None:
    body = {key: value for key, value in COMPLETION.items() if key != "usage"}
    assert CachedResponse(orjson.dumps(body), "m", 0.0, 1).usage == {}


def test_from_completion_keeps_the_object() -> None:
    entry = CachedResponse.from_completion(COMPLETION, model="m", stored_at=0.0, ttl=1)
    assert entry.completion is COMPLETION


# -- compression ------------------------------------------------------------------------------------


def test_small_body_not_compressed() -> None:
    body = orjson.dumps(COMPLETION)
    data = entry_with_body(body).encode()
    assert flags_of(data) == 0
    assert data.endswith(body)


def test_body_of_exactly_the_threshold_not_compressed() -> None:
    body = b"a" * COMPRESS_ABOVE
    data = entry_with_body(body).encode()
    assert flags_of(data) == 0
    assert data.endswith(body)


def test_body_one_byte_above_threshold_compressed() -> None:
    body = b"a" * (COMPRESS_ABOVE + 1)
    data = entry_with_body(body).encode()
    assert flags_of(data) == FLAG_ZLIB
    assert len(data) < 200
    assert CachedResponse.decode(data).body == body


def test_large_compressible_completion_compressed_and_round_trips() -> None:
    completion = {**COMPLETION, "choices": [{"index": 0, "message": {"role": "assistant",
                                                                     "content": "All work and no play. " * 2000},
                                             "logprobs": None, "finish_reason": "stop"}]}
    entry = CachedResponse.from_completion(completion, model="gpt-4o-mini", stored_at=5.0, ttl=10)
    data = entry.encode()
    assert flags_of(data) == FLAG_ZLIB
    assert len(data) < len(entry.body) // 10
    decoded = CachedResponse.decode(data)
    assert decoded.body == entry.body
    assert decoded.completion == completion


def test_incompressible_large_body_not_compressed() -> None:
    body = random_bytes(20_000)
    data = entry_with_body(body).encode()
    assert flags_of(data) == 0
    assert data.endswith(body)
    assert CachedResponse.decode(data).body == body


def test_compression_saving_just_under_a_fifth_not_used() -> None:
    body = base64.b85encode(random_bytes(30_000))  # zlib -1 saves ~18%
    assert 0.8 < len(zlib.compress(body, 1)) / len(body) < 0.85
    data = entry_with_body(body).encode()
    assert flags_of(data) == 0
    assert CachedResponse.decode(data).body == body


def test_compression_saving_over_a_fifth_used() -> None:
    body = base64.b64encode(random_bytes(30_000))  # zlib -1 saves ~23%
    assert 0.75 < len(zlib.compress(body, 1)) / len(body) < 0.8
    data = entry_with_body(body).encode()
    assert flags_of(data) == FLAG_ZLIB
    assert CachedResponse.decode(data).body == body


# -- corrupt data -----------------------------------------------------------------------------------


def _valid(body: bytes = b'{"a":1}') -> bytes:
    return CachedResponse(body, "m", 1000.0, 60).encode()


def _with_meta(meta: bytes, body: bytes = b"{}", flags: int = 0) -> bytes:
    return struct.pack(">BBII", VERSION, flags, len(meta), len(body)) + meta + body


CORRUPT = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x01\x00\x00", id="truncated-header"),
    pytest.param(_valid()[:10], id="truncated-meta"),
    pytest.param(_valid()[:10] + b"garbage-garbage-garbage-garbage-garbage-garbage", id="meta-not-json"),
    pytest.param(_with_meta(b'{"model":"m","stored_at":1.0}'), id="meta-without-ttl"),
    pytest.param(_with_meta(b'{"stored_at":1.0,"ttl":5}'), id="meta-without-model"),
    pytest.param(_with_meta(b"[1,2,3]"), id="meta-a-list"),
    pytest.param(_with_meta(b'{"model":"m","stored_at":1.0,"ttl":5}', b"not zlib", flags=FLAG_ZLIB),
                 id="flag-zlib-but-plain-body"),
    pytest.param(CachedResponse(b"x" * 10_000, "m", 0.0, 1).encode()[:-5], id="truncated-compressed-body"),
    pytest.param(b"\x02" + _valid()[1:], id="unknown-version"),
    pytest.param(b"\x00" + _valid()[1:], id="version-zero"),
]


@pytest.mark.parametrize("data", CORRUPT)
def test_corrupt_data_raises_entry_format_error(data: bytes) -> None:
    with pytest.raises(EntryFormatError):
        CachedResponse.decode(data)


def test_unknown_version_message() -> None:
    with pytest.raises(EntryFormatError, match="unknown entry version 2"):
        CachedResponse.decode(b"\x02" + _valid()[1:])


def test_entry_format_error_is_value_error() -> None:
    assert issubclass(EntryFormatError, ValueError)


@pytest.mark.parametrize("meta", [
    pytest.param(b'"a string"', id="meta-a-string"),
    pytest.param(b"42", id="meta-a-number"),
    pytest.param(b'{"model":"m","stored_at":"soon","ttl":5}', id="stored-at-not-a-number"),
    pytest.param(b'{"model":"m","stored_at":1.0,"ttl":null}', id="ttl-null"),
])
def test_wrong_shaped_meta_raises_entry_format_error(meta: bytes) -> None:
    with pytest.raises(EntryFormatError):
        CachedResponse.decode(_with_meta(meta))


def test_truncated_plain_body_raises_entry_format_error() -> None:
    with pytest.raises(EntryFormatError):
        CachedResponse.decode(_valid(orjson.dumps(COMPLETION))[:-10])


# -- expiry and age ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "expired"), [
    (1000.0, False),
    (1059.999, False),
    (1060.0, True),
    (1060.001, True),
    (5000.0, True),
    (900.0, False),
])
def test_expired(now: float, expired: bool) -> None:
    assert CachedResponse(b"{}", "m", 1000.0, 60).expired(now) is expired


@pytest.mark.parametrize(("now", "age"), [
    (1000.0, 0),
    (1000.9, 0),
    (1001.0, 1),
    (1059.99, 59),
    (1090.5, 90),
    (990.0, 0),  # a clock that went backwards never gives a negative Age
])
def test_age(now: float, age: int) -> None:
    assert CachedResponse(b"{}", "m", 1000.0, 60).age(now) == age
