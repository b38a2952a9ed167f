"""The stored form of a cached answer: a small binary envelope around the completion body.

Layout: version byte, flags byte, 4-byte big-endian metadata length, 4-byte stored body length, orjson
metadata, body (the length catches a truncated value before it is sent as a 200). The body is
the ``chat.completion`` JSON exactly as it will be sent to a plain client, so a plain hit sends stored
bytes without re-serialising; bodies above :data:`COMPRESS_ABOVE` are zlib-compressed when that saves
at least a fifth (see ``bench/exact_bench.py --entry`` for the measurement behind the numbers).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.core.identity import IdentityTemplate, identity_template
from proxy.core.replay import identity_spans
from proxy.core.usage import usage_numbers

VERSION = 1
FLAG_ZLIB = 1
COMPRESS_ABOVE = 4096
_HEADER = struct.Struct(">BBII")


class EntryFormatError(ValueError):
    pass


@dataclass
class CachedResponse:
    body: bytes
    model: str
    stored_at: float
    ttl: int
    meta: dict[str, Any] = field(default_factory=dict)
    _completion: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    _tokens: tuple[int, int, int] | None = field(default=None, repr=False, compare=False)
    _identity: tuple[IdentityTemplate | None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_completion(cls, completion: dict[str, Any], *, model: str, stored_at: float, ttl: int,
                        **meta: Any) -> CachedResponse:
        return cls(orjson.dumps(completion), model, stored_at, ttl, dict(meta), completion)

    @property
    def completion(self) -> dict[str, Any]:
        if self._completion is None:
            self._completion = orjson.loads(self.body)
        return self._completion

    @property
    def stored_id(self) -> str | None:
        """The completion id the upstream gave this answer (kept in the metadata, so a hit need not parse
        the body for it; entries written before that fall back to the parsed body)."""
        value = self.meta.get("id")
        if value is None and self._completion is not None:
            value = self._completion.get("id")
        return value if isinstance(value, str) else None

    @property
    def usage(self) -> dict[str, Any]:
        """The answer's usage: kept in the metadata when the entry was made, so a hit need not parse the
        body (entries written before that parse it)."""
        usage = self.meta["usage"] if "usage" in self.meta else self.completion.get("usage")
        return usage if isinstance(usage, dict) else {}

    @property
    def tokens(self) -> tuple[int, int, int]:
        """(prompt, completion, provider-cached) tokens of :attr:`usage`, worked out once per entry."""
        if self._tokens is None:
            self._tokens = usage_numbers(self.usage)
        return self._tokens

    def identity(self) -> IdentityTemplate | None:
        """The plain body cut around its id and ``created``, worked out once per entry (see
        :mod:`proxy.core.identity`); ``None`` when the body has no string id to replace."""
        if self._identity is None:
            spans = self.meta.get("spans")
            if not (isinstance(spans, list) and len(spans) == 4):
                found = identity_spans(self.body)
                spans = self.meta["spans"] = list(found) if found is not None else []
            template = identity_template(self.body, tuple(spans), self.stored_id) if spans else None
            self._identity = (template,)
        return self._identity[0]

    def expired(self, now: float) -> bool:
        return now >= self.stored_at + self.ttl

    def age(self, now: float) -> int:
        return max(0, int(now - self.stored_at))

    def encode(self) -> bytes:
        meta = orjson.dumps({"model": self.model, "stored_at": self.stored_at, "ttl": self.ttl, **self.meta})
        body, flags = self.body, 0
        if len(body) > COMPRESS_ABOVE:
            packed = zlib.compress(body, 1)
            if len(packed) <= len(body) * 0.8:
                body, flags = packed, FLAG_ZLIB
        return _HEADER.pack(VERSION, flags, len(meta), len(body)) + meta + body

    @staticmethod
    def stored_body_length(data: bytes) -> int:
        """How many bytes the body takes in an encoded entry (after compression, without the envelope)."""
        return int(_HEADER.unpack_from(data)[3])

    @classmethod
    def decode(cls, data: bytes) -> CachedResponse:
        try:
            version, flags, meta_len, body_len = _HEADER.unpack_from(data)
            if version != VERSION:
                raise EntryFormatError(f"unknown entry version {version}")
            start = _HEADER.size
            meta = orjson.loads(data[start:start + meta_len])
            body = data[start + meta_len:]
            if len(body) != body_len:
                raise EntryFormatError(f"body is {len(body)} bytes, expected {body_len}")
            if flags & FLAG_ZLIB:
                body = zlib.decompress(body)
            if not isinstance(meta, dict):
                raise EntryFormatError("metadata is not an object")
            model, stored_at, ttl = str(meta.pop("model")), float(meta.pop("stored_at")), int(meta.pop("ttl"))
        except EntryFormatError:
            raise
        except (struct.error, orjson.JSONDecodeError, zlib.error, KeyError, TypeError, ValueError) as exc:
            raise EntryFormatError(f"corrupt cache entry: {exc}") from exc
        return cls(body, model, stored_at, ttl, meta)


#: Decoded entries :class:`DecodedEntries` keeps at most, and the largest body it keeps: at most a few MB.
DECODED = 512
DECODED_MAX_BODY = 8192


class DecodedEntries:
    """Decoded entries kept for the exact tier's first level: a repeated hit whose stored bytes are the same as
    last time (the very object, from an in-process level; equal bytes, from a server) reuses the decoded entry
    (and what it worked out: usage, the identity template) instead of decoding the envelope again. Comparing
    a few KB costs far less than decoding them."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[bytes, CachedResponse]] = {}

    def decode(self, key: str, raw: bytes) -> CachedResponse:
        known = self._known.get(key)
        if known is not None and known[0] == raw:  # identity first, then length, then the bytes
            return known[1]
        entry = CachedResponse.decode(raw)
        if len(entry.body) <= DECODED_MAX_BODY:
            if len(self._known) >= DECODED:
                del self._known[next(iter(self._known))]  # the oldest first
            self._known[key] = (raw, entry)
        return entry
