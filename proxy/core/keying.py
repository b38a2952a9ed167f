"""From a chat request's bytes and tenant to its checked body and exact-tier key, remembered. Pure: no I/O.

An exact hit is, nearly always, the same client sending the same bytes again: an SDK serialises the same
request the same way. Parsing, checking, canonicalising and hashing those bytes is the largest part of an
exact hit that cachegate itself does (measured with ``bench/exact_bench.py``), and the answer depends only
on the bytes, the tenant, the query string, the routing headers and the settings, so it is kept for the
last :data:`ENTRIES` distinct small requests. A body that fails validation raises before anything is
kept. Bodies are shared between the requests that sent the same bytes, so nothing may change them
(nothing does: the upstream gets a copy when ``stream_options`` is added).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.core import canonical, policy

ENTRIES = 1024
MAX_BYTES = 4096  # larger requests are keyed afresh each time: the memory stays under ~4 MB of bodies


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    body: dict[str, Any]
    key: str
    stream: bool
    wants_usage: bool  # stream_options.include_usage


_Known = tuple[bytes, canonical.Tenant, str, tuple[tuple[str, str], ...]]


class RequestKeys:
    def __init__(self, *, prefix: str, upstream: str, entries: int = ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.prefix = prefix
        self.upstream = upstream
        self._entries = entries
        self._max_bytes = max_bytes
        self._known: dict[_Known, KeyedRequest] = {}

    def __call__(self, raw: bytes, tenant: canonical.Tenant, *, query: str = "",
                 routing: tuple[tuple[str, str], ...] = ()) -> KeyedRequest:
        """The checked body and key of ``raw`` (raises :class:`~proxy.errors.BadRequestError` for a bad one);
        ``query`` and ``routing`` as :func:`~proxy.core.canonical.request_digest` takes them."""
        known_as = (raw, tenant, query, routing)
        known = self._known.get(known_as)
        if known is not None:
            return known
        body = policy.parse_chat_request(raw)
        digest = canonical.request_digest(body, upstream=self.upstream, tenant=tenant, query=query, routing=routing)
        keyed = KeyedRequest(body, canonical.exact_key(self.prefix, tenant, body["model"], digest),
                             policy.wants_stream(body), policy.wants_usage_chunk(body))
        if len(raw) <= self._max_bytes:
            if len(self._known) >= self._entries:
                del self._known[next(iter(self._known))]  # the oldest: first in, first out
            self._known[known_as] = keyed
        return keyed
