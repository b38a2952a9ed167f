"""Which headers cross the proxy, in each direction.

Towards the upstream (:func:`to_upstream`), dropped:

* hop-by-hop headers (RFC 9110 §7.6.1: ``connection``, ``keep-alive``, ``te``, ``trailer``,
  ``transfer-encoding``, ``upgrade``, ``proxy-*``, ``http2-settings``) and every header the client's
  ``Connection`` names: they describe the client's connection to us, not the request;
* ``host`` and ``content-length``: the HTTP client sets its own;
* ``accept-encoding``: the HTTP client negotiates its own and hands us decoded bytes we can parse;
* ``expect``: ``100-continue`` is a handshake between the client and us, already done (or not wanted)
  by the time the request goes on;
* ``cookie``: the dashboard's session cookie rides along with any same-origin ``/v1`` call, and no
  OpenAI-compatible API reads cookies;
* cachegate's own request headers: ``x-bypass-cache``, ``x-cache-*`` (``x-cache-ttl``,
  ``x-cache-namespace``, …), ``cache-control`` (a directive to our cache) and ``x-request-id``
  (cachegate's own id for the request).

With ``UPSTREAM_API_KEY`` the client's ``authorization`` and ``api-key`` are replaced by that key; other
credentials (``x-api-key``, gateway keys) are the client's to send and go on.

Towards the client (:func:`to_client`), dropped:

* hop-by-hop headers and those the upstream's ``Connection`` names; ``content-encoding`` and
  ``content-length`` (bodies are decoded, and may be re-framed); ``date`` and ``server`` (uvicorn sets
  its own) and ``set-cookie`` (an upstream's cookie, e.g. Cloudflare's ``__cf_bm``, would be stored for
  the proxy's origin);
* the names cachegate sets itself, so no answer carries two: ``x-cache`` and every ``x-cache-*``, ``age``
  (our age of a cached answer; a CDN's age before the upstream means nothing to the client),
  ``x-upstream-request-id``, ``x-accel-buffering`` (cachegate sets its own on streams, for the proxy in
  front of it) and ``x-ratelimit-limit`` / ``-remaining`` / ``-reset`` (the rate limiter's; dropped
  whether or not it is on, so the names always mean cachegate's budget — the upstream's suffixed
  ``x-ratelimit-*-requests`` / ``-tokens`` go on);
* on answers cachegate may store and replay (``cacheable=True``: chat completions) also
  ``cache-control`` and ``expires``: a hit carries none of the upstream's headers, so a miss must not
  carry caching rules that a hit of the same answer would not; passthrough answers keep them.

The upstream's ``x-request-id`` is passed on as ``x-upstream-request-id`` (cachegate's own
``x-request-id`` names the request towards the client).
"""

from __future__ import annotations

from collections.abc import Iterable

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "http2-settings", "host", "content-length",
})
_NOT_TO_UPSTREAM = _HOP_BY_HOP | {"accept-encoding", "expect", "cookie", "x-bypass-cache", "x-cache",
                                  "cache-control", "x-request-id"}
_NOT_TO_CLIENT = _HOP_BY_HOP | {"content-encoding", "date", "server", "set-cookie", "x-cache", "age",
                                "x-upstream-request-id", "x-accel-buffering", "x-ratelimit-limit",
                                "x-ratelimit-remaining", "x-ratelimit-reset"}
_NOT_TO_CLIENT_CACHEABLE = _NOT_TO_CLIENT | {"cache-control", "expires"}
_OURS = "x-cache-"  # every header of this prefix is cachegate's, in both directions


def _connection_names(headers: list[tuple[str, str]]) -> set[str]:
    """The header names every ``Connection`` header lists (RFC 9110 §7.6.1)."""
    return {token.strip().lower() for name, value in headers if name.lower() == "connection"
            for token in value.split(",") if token.strip()}


def to_upstream(headers: Iterable[tuple[str, str]], api_key: str | None) -> list[tuple[str, str]]:
    """The client's headers for the upstream; ``api_key`` (UPSTREAM_API_KEY) replaces its credentials."""
    items = list(headers)
    dropped = _NOT_TO_UPSTREAM | _connection_names(items)
    out = [(name, value) for name, value in items
           if (lower := name.lower()) not in dropped and not lower.startswith(_OURS)]
    if api_key:
        out = [(name, value) for name, value in out if name.lower() not in {"authorization", "api-key"}]
        out.append(("authorization", f"Bearer {api_key}"))
    return out


def to_client(headers: Iterable[tuple[str, str]], *, cacheable: bool = False) -> list[tuple[str, str]]:
    """The upstream's response headers for the client, lower-cased (``cacheable``: a chat answer)."""
    items = list(headers)
    dropped = (_NOT_TO_CLIENT_CACHEABLE if cacheable else _NOT_TO_CLIENT) | _connection_names(items)
    out = []
    for name, value in items:
        lower = name.lower()
        if lower == "x-request-id":
            out.append(("x-upstream-request-id", value))
        elif lower not in dropped and not lower.startswith(_OURS):
            out.append((lower, value))
    return out
