"""Probe requests: the chat body and headers for a prompt, a set of cache hints and the upstream's quirks.

Hints, each of which some provider needs before it caches (or routes a prompt to the server that has it):

- ``prompt_cache_key``: a body field that pins a prompt to one server (OpenAI, others);
- ``x-grok-conv-id``: the header xAI routes by;
- ``cache_control``: Anthropic-style marks on content blocks (see :func:`proxy.probe.prompts.messages`);
- ``prompt_cache_retention``: OpenAI's extended retention (``"24h"``).

For Venice every body carries ``venice_parameters.include_venice_system_prompt = false``: otherwise Venice
prepends its own system prompt, the prefix is not what the probe sent, and the first request already hits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

import orjson

ROUTING_HINTS = ("prompt_cache_key", "x-grok-conv-id")
HINTS = ("prompt_cache_key", "x-grok-conv-id", "cache_control", "prompt_cache_retention")
#: parameters the probe adds of its own accord, so a 400 naming one is answered by sending it without
OPTIONAL_PARAMS = ("prompt_cache_key", "prompt_cache_retention", "venice_parameters", "stream_options",
                   "max_tokens", "temperature")


def build_request(model: str, messages: list[Any], *, stream: bool = False, hints: Collection[str] = (),
                  pin: str = "", venice: bool = False, max_tokens: int = 16,
                  without: Collection[str] = ()) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(body, extra headers) of one probe request. ``pin`` is the value of a routing hint (stable for
    one prompt); ``without`` names parameters the model rejected, which are never sent to it again.
    ``cache_control`` is part of ``messages`` already (the marks sit on content blocks)."""
    unknown = set(hints) - set(HINTS)
    if unknown:
        raise ValueError(f"unknown cache hints: {', '.join(sorted(unknown))}")
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    headers: list[tuple[str, str]] = []
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if "prompt_cache_key" in hints:
        body["prompt_cache_key"] = pin
    if "prompt_cache_retention" in hints:
        body["prompt_cache_retention"] = "24h"
    if "x-grok-conv-id" in hints:
        headers.append(("x-grok-conv-id", pin))
    if venice:
        body["venice_parameters"] = {"include_venice_system_prompt": False}
    for name in without:
        body.pop(name, None)
    return body, headers


def encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def request_hash(content: bytes) -> str:
    """A short fingerprint of the exact bytes sent, to tie evidence to a request."""
    return hashlib.sha256(content).hexdigest()[:16]


def rejected_param(status: int, body: bytes, sent: dict[str, Any]) -> str | None:
    """The optional parameter a 400 answer names (``Extra inputs are not permitted, field: 'x'``,
    ``Unrecognized request argument supplied: x``, or the error's ``param``), if the probe sent it."""
    if status != 400:
        return None
    try:
        error = orjson.loads(body).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    message = str(error.get("message") or "")
    param = error.get("param")
    for name in OPTIONAL_PARAMS:
        if name in sent and (param == name or name in message):
            return name
    return None
