"""Which headers cross the proxy, in each direction."""

from __future__ import annotations

from collections.abc import Iterable

# Hop-by-hop headers (RFC 9110 §7.6.1) and those httpx/uvicorn set themselves. accept-encoding is
# dropped so httpx negotiates its own and hands us decoded bytes we can parse.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
_NOT_TO_UPSTREAM = _HOP_BY_HOP | {"accept-encoding", "x-bypass-cache", "x-cache-ttl", "x-cache-namespace",
                                  "cache-control", "x-request-id"}
_NOT_TO_CLIENT = _HOP_BY_HOP | {"content-encoding", "date", "server", "set-cookie"}


def to_upstream(headers: Iterable[tuple[str, str]], api_key: str | None) -> list[tuple[str, str]]:
    """The client's headers for the upstream; ``api_key`` (UPSTREAM_API_KEY) replaces its credentials."""
    out = [(name, value) for name, value in headers if name.lower() not in _NOT_TO_UPSTREAM]
    if api_key:
        out = [(name, value) for name, value in out if name.lower() not in {"authorization", "api-key"}]
        out.append(("authorization", f"Bearer {api_key}"))
    return out


def to_client(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in headers if name.lower() not in _NOT_TO_CLIENT]
