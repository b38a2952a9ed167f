"""Canonical form of a chat request and the cache keys derived from it. Pure: no I/O.

Two requests share an exact-tier entry only when every field that can change the answer is equal after
canonicalisation (keys sorted, ``1`` and ``1.0`` the same number), and they come from the same tenant
towards the same upstream. Only the fields in :data:`IGNORED_FIELDS` are left out.

What else can change the answer is in the key too, only when present (so keys of requests without it
stay what they were): the request's query string (``?api-version=`` on Azure) and the values of the
routing headers (:data:`DEFAULT_ROUTING_HEADERS`: organisation, project, gateway provider and config,
API version). Who asks is the tenant: the API key (``Authorization: Bearer`` or ``api-key``) and the
credential headers gateways authenticate clients with (:data:`DEFAULT_CREDENTIAL_HEADERS`), hashed
with :func:`tenant_hash`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

KEY_VERSION = 1

#: Fields that cannot change the answer, so they are left out of the key:
#: ``stream``/``stream_options`` only change the framing (cachegate converts between the forms),
#: ``user``/``safety_identifier``/``metadata``/``store`` are bookkeeping on the provider's side and
#: ``prompt_cache_key`` is a routing hint for the provider's own prompt cache.
IGNORED_FIELDS = frozenset(
    {"stream", "stream_options", "user", "safety_identifier", "metadata", "store", "prompt_cache_key"}
)


def normalise(value: Any) -> Any:
    """Recursively turn whole floats into ints (``1.0`` → ``1``) so equal numbers hash equally."""
    # Exact type checks, strings skipped without a call: this runs on every request (values parsed from
    # JSON are exactly str, dict, list, float, int, bool or None).
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) is str else normalise(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) is str else normalise(item) for item in value]
    if kind is float:
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    if isinstance(value, float):
        return normalise(float(value))
    return value


def canonical_bytes(value: Any) -> bytes:
    return orjson.dumps(normalise(value), option=orjson.OPT_SORT_KEYS)


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass(frozen=True)
class Tenant:
    """Whose cache a request reads and writes.

    ``owner`` is the hash of the client's credentials (:func:`tenant_hash` of :func:`credential_of`;
    ``shared`` when CACHE_SHARED is on, ``anonymous`` without any); ``namespace`` comes from
    ``x-cache-namespace`` and narrows it further.
    """

    owner: str
    namespace: str = ""

    @property
    def owner_id(self) -> str:
        return self.owner[:16]

    @property
    def namespace_id(self) -> str:
        return namespace_id(self.namespace)


@functools.lru_cache(maxsize=4096)  # few distinct values, asked for on every request
def namespace_id(namespace: str) -> str:
    return _sha256(namespace)[:12] if namespace else "-"


@functools.lru_cache(maxsize=4096)
def model_id(model: str) -> str:
    return _sha256(model)[:12]


def api_key_of(headers: Mapping[str, str]) -> str | None:
    """The client's API key from ``Authorization: Bearer`` (or Azure's ``api-key``)."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("api-key") or None


def hash_api_key(key: str | None) -> str | None:
    """The unsalted SHA-256 tenant hash of before :func:`tenant_hash`: kept for reading old entries during
    the migration below, and for callers not yet moved."""
    return _sha256(key) if key else None


#: Headers gateways authenticate clients with while the SDK sends a placeholder key: each one present
#: is part of the tenant (Kong/AWS-style ``x-api-key``, Portkey, Cloudflare AI Gateway, Helicone).
DEFAULT_CREDENTIAL_HEADERS = ("x-api-key", "x-portkey-api-key", "cf-aig-authorization", "helicone-auth")
#: Headers that choose who answers or how, so they are part of the key: the OpenAI organisation and
#: project (fine-tuned models and limits are per organisation), Portkey's provider and config, and
#: Anthropic's API version.
DEFAULT_ROUTING_HEADERS = ("openai-organization", "openai-project", "x-portkey-provider", "x-portkey-config",
                           "anthropic-version")


def named_headers(headers: Mapping[str, str], names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` of each of ``names`` that ``headers`` holds, names lower-cased and sorted, so the
    result is the same however the client spelt or ordered them (``headers`` is looked up lower-case,
    as ASGI and Starlette give them)."""
    wanted = _wanted(names if isinstance(names, tuple) else tuple(names))
    return tuple((name, value) for name in wanted if (value := headers.get(name)) is not None)


@functools.lru_cache(maxsize=64)  # the configured names, normalised once rather than on every request
def _wanted(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({name.strip().lower() for name in names if name.strip()}))


def credential_of(headers: Mapping[str, str],
                  names: Iterable[str] = DEFAULT_CREDENTIAL_HEADERS) -> str | None:
    """What a tenant is derived from: the API key alone when none of the credential headers ``names`` is
    present (so such tenants stay what they were), else the key and those headers together. ``None``
    when there is nothing (an anonymous request)."""
    key = api_key_of(headers)
    extra = named_headers(headers, names)
    if not extra:
        return key
    # NUL cannot occur in a header value, so this never equals a bare API key
    return "\0" + orjson.dumps([key, extra]).decode()


def tenant_hash(secret: bytes, credential: str | None) -> str | None:
    """HMAC-SHA256 of a :func:`credential_of` under the install's secret (hex), ``None`` without one.

    Why: the unsalted SHA-256 of an API key is stored in usage rows and in every Redis key, and weak keys
    (``sk-1234``, ``ollama``) fall to a dictionary; with the secret they cannot be tried offline.

    The move from :func:`hash_api_key` (unsalted SHA-256) changes every owner, so every key: entries
    written before the upgrade are not found again and expire with their TTL (a cold start, misses and never
    a wrong answer); usage rows keep the hash they were written with, so a report grouping by tenant shows
    one client as two tenants across the upgrade. The old hash cannot be turned into the new one without
    the API key, which is the point. Where the secret comes from: :mod:`proxy.platform.secret`.
    """
    if not secret:
        raise ValueError("the tenant secret is empty")
    if not credential:
        return None
    return hmac.new(secret, credential.encode(), hashlib.sha256).hexdigest()


def tenant_for(api_key_hash: str | None, namespace: str | None, *, shared: bool) -> Tenant:
    owner = "shared" if shared else (api_key_hash or "anonymous")
    return Tenant(owner=owner, namespace=(namespace or "").strip())


def request_digest(body: Mapping[str, Any], *, upstream: str, tenant: Tenant, query: str = "",
                   routing: tuple[tuple[str, str], ...] = ()) -> str:
    """SHA-256 over the canonical request, the upstream and the tenant, and the query string (as sent:
    two spellings of one query are two keys, a miss and never a wrong answer) and the routing headers
    (:func:`named_headers` of :data:`DEFAULT_ROUTING_HEADERS`) when there are any."""
    request = {key: value for key, value in body.items() if key not in IGNORED_FIELDS}
    material: dict[str, Any] = {"v": KEY_VERSION, "upstream": upstream, "owner": tenant.owner,
                                "namespace": tenant.namespace, "request": request}
    if query:
        material["query"] = query
    if routing:
        material["headers"] = [list(pair) for pair in routing]
    return _sha256(canonical_bytes(material))


def exact_key(prefix: str, tenant: Tenant, model: str, digest: str) -> str:
    """``<prefix>exact:<owner>:<namespace>:<model>:{<digest>}``; the middle parts let admin clear by scope.

    The braces are a Redis Cluster hash tag: the slot comes from the digest alone, so entries spread evenly
    over the shards (a tag by tenant or model would make one shard hot) and the keys kept with an entry
    (its lease) share its slot by carrying the same tag."""
    return f"{prefix}exact:{tenant.owner_id}:{tenant.namespace_id}:{model_id(model)}:{{{digest}}}"


def semantic_key(prefix: str, point_id: str) -> str:
    """How a semantic entry is named to clients (``x-cache-key``) and to ``DELETE /admin/cache/entries``."""
    return f"{prefix}semantic:{point_id}"


def exact_pattern(prefix: str, *, model: str | None = None, namespace: str | None = None) -> str:
    """A SCAN pattern over exact-tier keys, narrowed by model and/or namespace."""
    ns = namespace_id(namespace) if namespace is not None else "*"
    mid = model_id(model) if model is not None else "*"
    return f"{prefix}exact:*:{ns}:{mid}:*"


def semantic_scope(body: Mapping[str, Any], *, upstream: str, tenant: Tenant, query: str = "",
                   routing: tuple[tuple[str, str], ...] = ()) -> str:
    """Hash of everything but the wording of the last user turn: two requests may match semantically
    only within one scope (same model, parameters, system prompt, earlier turns and tenant)."""
    messages = list(body.get("messages") or [])
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"),
                    default=None)
    if last_user is not None:
        messages[last_user] = {**messages[last_user], "content": None}
    stripped = {**body, "messages": messages}
    return request_digest(stripped, upstream=upstream, tenant=tenant, query=query, routing=routing)


def last_user_text(body: Mapping[str, Any]) -> str | None:
    """Text of the last user turn when it is plain text (string or text-only parts), else ``None``."""
    messages = body.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list) and all(
                isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                for part in content
            ):
                return "\n".join(part["text"] for part in content)
            return None
    return None
