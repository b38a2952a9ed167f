"""A chat request, parsed once from its bytes and headers. Pure: no I/O.

:class:`ChatRequestParser` turns the client's body and headers into a :class:`ChatRequest` that holds
everything the pipeline decides with (model, stream, whether usage was asked for, the cache directives and
TTL inputs, the tenant, the exact-tier key, the semantic text and scope, the bytes to send upstream), so
no part of the pipeline reads the body again. A bad body or header raises
:class:`~proxy.errors.BadRequestError` before anything is stored or sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.core import canonical, policy
from proxy.core.keying import RequestKeys

#: The headers the parser reads; every other header is only forwarded. ASGI servers give header names in
#: lower case, and so do the callers that build requests themselves (warm).
_READ = frozenset({b"authorization", b"api-key", b"x-cache-namespace", b"x-bypass-cache", b"x-cache-ttl",
                   b"cache-control"})


@dataclass(frozen=True, slots=True)
class TtlRule:
    """How long answers are kept: ``CACHE_TTL``, or ``CACHE_TTL_CREATIVE`` above a temperature."""

    default: int
    creative: int
    creative_temperature: float


@dataclass(frozen=True, slots=True)
class ChatRequest:
    raw: bytes  # the client's body, byte for byte
    body: Mapping[str, Any]  # parsed and checked; shared by requests of the same bytes, so never changed
    model: str
    stream: bool
    wants_usage: bool  # stream_options.include_usage: the client wants the usage event of a stream
    directives: policy.Directives
    tenant: canonical.Tenant
    api_key_hash: str | None
    key: str  # the exact-tier key
    headers: Sequence[tuple[bytes, bytes]]  # the client's headers as sent (forwarded upstream, filtered)
    upstream: str  # the upstream base URL the key was derived for

    def ttl(self, rule: TtlRule) -> int:
        return policy.choose_ttl(self.directives, self.body, default=rule.default, creative=rule.creative,
                                 creative_temperature=rule.creative_temperature)

    def upstream_body(self, *, ask_usage: bool) -> tuple[bytes, bool]:
        """The bytes to send upstream, and whether the usage event in the answer must be hidden.

        A stream is asked for its usage (``ask_usage``: UPSTREAM_STREAM_USAGE) even when the client did not
        ask, so the ledger and the cached entry know what the answer cost; the client then never sees that
        event. Otherwise the upstream receives the client's own bytes.
        """
        if not (self.stream and ask_usage and not self.wants_usage):
            return self.raw, False
        options = self.body.get("stream_options")
        extra = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps({**self.body, "stream_options": extra}), True

    def semantic_scope(self) -> str:
        """Everything but the wording of the last user turn (see :func:`canonical.semantic_scope`)."""
        return canonical.semantic_scope(self.body, upstream=self.upstream, tenant=self.tenant)


class ChatRequestParser:
    """Parses chat requests for one upstream and tenancy rule; repeated small bodies are keyed once."""

    def __init__(self, *, prefix: str, upstream: str, shared: bool) -> None:
        self.upstream = upstream
        self.shared = shared
        self.keys = RequestKeys(prefix=prefix, upstream=upstream)

    def tenant(self, headers: Mapping[str, str]) -> tuple[str | None, canonical.Tenant]:
        """The hash of the request's API key, and the tenant its headers name."""
        api_key_hash = canonical.hash_api_key(canonical.api_key_of(headers))
        return api_key_hash, canonical.tenant_for(api_key_hash, headers.get("x-cache-namespace"), shared=self.shared)

    def parse(self, raw: bytes, headers: Sequence[tuple[bytes, bytes]]) -> ChatRequest:
        read = read_headers(headers)
        api_key_hash, tenant = self.tenant(read)
        keyed = self.keys(raw, tenant)
        directives = policy.parse_directives(read)
        body = keyed.body
        return ChatRequest(raw=raw, body=body, model=body["model"], stream=keyed.stream,
                           wants_usage=policy.wants_usage_chunk(body), directives=directives, tenant=tenant,
                           api_key_hash=api_key_hash, key=keyed.key, headers=headers, upstream=self.upstream)


def read_headers(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers the parser needs, by lower-case name (of a repeated header the last value wins)."""
    return {name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers if name in _READ}
