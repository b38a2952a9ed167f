"""A chat request, parsed once from its bytes and headers. Pure: no I/O.

:class:`ChatRequestParser` turns the client's body and headers into a :class:`ChatRequest` that holds
everything the pipeline decides with (model, stream, whether usage was asked for, the cache directives and
TTL inputs, the tenant, the exact-tier key, the semantic text and scope, the bytes to send upstream), so
no part of the pipeline reads the body again. A bad body or header raises
:class:`~proxy.errors.BadRequestError` before anything is stored or sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.core import canonical, policy
from proxy.core.keying import RequestKeys

#: The headers the parser reads besides the configured key headers; every other header is only forwarded.
#: ASGI servers give header names in lower case, and so do the callers that build requests themselves (warm).
_READ = frozenset({b"authorization", b"api-key", b"x-cache-namespace", b"x-bypass-cache", b"x-cache-ttl",
                   b"cache-control"})
#: Owners remembered per credential: the HMAC is computed once per API key, not once per request.
OWNERS = 4096
#: What distinct sets of read headers decided (tenant, routing, directives), remembered at most.
FRONTS = 4096

#: What a request's read headers decide: (the tenant hash, the tenant, the routing headers, the directives).
_Front = tuple[str | None, canonical.Tenant, tuple[tuple[str, str], ...], policy.Directives]


@dataclass(frozen=True, slots=True)
class TtlRule:
    """How long answers are kept: ``CACHE_TTL``, or ``CACHE_TTL_CREATIVE`` above a temperature."""

    default: int
    creative: int
    creative_temperature: float


@dataclass(slots=True)
class ChatRequest:
    """Treated as immutable (derive a changed one with ``dataclasses.replace``), but not ``frozen``: a frozen
    dataclass sets each of these 13 fields through ``object.__setattr__``, which made building one 4.5 µs of
    an exact hit's ~30 µs of cachegate's own work (bench/hit_profile.py); a plain one takes under 1 µs."""

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
    query: str = ""  # the query string, as sent: forwarded upstream and part of the key
    routing: tuple[tuple[str, str], ...] = ()  # the routing headers that are part of the key

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
        return canonical.semantic_scope(self.body, upstream=self.upstream, tenant=self.tenant, query=self.query,
                                        routing=self.routing)


class ChatRequestParser:
    """Parses chat requests for one upstream and tenancy rule; repeated small bodies are keyed once.

    Who asks (the tenant) is the HMAC, under the install's secret, of the API key and of the credential
    headers among ``key_headers``; the other ``key_headers`` (routing: organisation, project, gateway
    config) and the query string are part of the key.
    """

    def __init__(self, *, prefix: str, upstream: str, shared: bool, secret: Callable[[], bytes],
                 key_headers: Sequence[str] = ()) -> None:
        self.upstream = upstream
        self.shared = shared
        self.secret = secret  # read per request: the secret is known once the app has started
        names = {name.strip().lower() for name in key_headers if name.strip()}
        self.credentials = tuple(sorted(names & set(canonical.DEFAULT_CREDENTIAL_HEADERS)))
        self.routing = tuple(sorted(names - set(self.credentials)))
        self._read = _READ | {name.encode("latin-1") for name in names}
        self._owners: dict[tuple[bytes, str], str] = {}
        #: A client sends the same few headers on every request: what they decide depends on nothing else
        #: (and the secret), so it is worked out once per distinct set (a bad one raises and is not kept).
        self._fronts: dict[tuple[bytes, tuple[tuple[bytes, bytes], ...]], _Front] = {}
        self.keys = RequestKeys(prefix=prefix, upstream=upstream)

    def tenant(self, headers: Mapping[str, str]) -> tuple[str | None, canonical.Tenant]:
        """The tenant hash of the request's credentials, and the tenant its headers name."""
        credential = canonical.credential_of(headers, self.credentials)
        owner = None
        if credential is not None:
            secret = self.secret()
            owner = self._owners.get((secret, credential))
            if owner is None:
                owner = canonical.tenant_hash(secret, credential)
                if owner is not None:
                    if len(self._owners) >= OWNERS:
                        del self._owners[next(iter(self._owners))]
                    self._owners[secret, credential] = owner
        return owner, canonical.tenant_for(owner, headers.get("x-cache-namespace"), shared=self.shared)

    def parse(self, raw: bytes, headers: Sequence[tuple[bytes, bytes]], query: str = "") -> ChatRequest:
        names = self._read
        known_as = (self.secret(), tuple([pair for pair in headers if pair[0] in names]))
        front = self._fronts.get(known_as)
        if front is None:
            front = self._front(known_as[1])
            if len(self._fronts) >= FRONTS:
                del self._fronts[next(iter(self._fronts))]  # the oldest: first in, first out
            self._fronts[known_as] = front
        api_key_hash, tenant, routing, directives = front
        keyed = self.keys(raw, tenant, query=query, routing=routing)
        body = keyed.body
        return ChatRequest(raw=raw, body=body, model=body["model"], stream=keyed.stream,
                           wants_usage=keyed.wants_usage, directives=directives, tenant=tenant,
                           api_key_hash=api_key_hash, key=keyed.key, headers=headers, upstream=self.upstream,
                           query=query, routing=routing)


    def _front(self, picked: Sequence[tuple[bytes, bytes]]) -> _Front:
        read = read_headers(picked, self._read)
        api_key_hash, tenant = self.tenant(read)
        routing = canonical.named_headers(read, self.routing) if self.routing else ()
        return api_key_hash, tenant, routing, policy.parse_directives(read)


def read_headers(headers: Sequence[tuple[bytes, bytes]],
                 names: frozenset[bytes] | set[bytes] = _READ) -> dict[str, str]:
    """The headers ``names`` of a request, by lower-case name (of a repeated header the last value wins)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers if name in names}
