"""What a request may read and write, for how long, and what may be stored. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.core import limits
from proxy.errors import BadRequestError

MAX_TTL = 31_536_000
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Directives:
    """``read``: a cached answer may be served; ``write``: the fresh answer may be stored."""

    read: bool = True
    write: bool = True
    bypass: bool = False
    ttl: int | None = None
    #: ``Cache-Control: stale-while-revalidate=N``: an entry expired at most N seconds ago may be served (and
    #: is refreshed in the background)
    stale_while_revalidate: int | None = None
    #: ``Cache-Control: stale-if-error=N`` or ``max-stale=N``: the most staleness accepted when the upstream
    #: fails (``None``: what the cache keeps, ``CACHE_KEEP_EXPIRED``; ``max-stale=0`` refuses stale answers)
    stale_if_error: int | None = None

    def stale_window(self, kept: float) -> float:
        """Seconds past its TTL an entry may answer this request when the upstream fails: what the cache
        keeps (``kept``), narrowed by the client's ``stale-if-error=N`` or ``max-stale=N``; none when the
        client said not to read the cache."""
        if not self.read:
            return 0.0
        return kept if self.stale_if_error is None else min(kept, float(self.stale_if_error))


def parse_directives(headers: Mapping[str, str]) -> Directives:
    """From ``x-bypass-cache``, ``Cache-Control`` and ``x-cache-ttl``; a bad value is a 400."""
    bypass_raw = headers.get("x-bypass-cache")
    bypass = False
    if bypass_raw is not None:
        value = bypass_raw.strip().lower()
        if value not in _TRUE | _FALSE:
            raise BadRequestError(f"x-bypass-cache must be true or false, got {bypass_raw!r}",
                                  param="x-bypass-cache", code="invalid_header")
        bypass = value in _TRUE

    ttl_raw = headers.get("x-cache-ttl")
    ttl = None
    if ttl_raw is not None:
        text = ttl_raw.strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_TTL:
            raise BadRequestError(f"x-cache-ttl must be a whole number of seconds from 1 to {MAX_TTL}, "
                                  f"got {ttl_raw!r}", param="x-cache-ttl", code="invalid_header")
        ttl = int(text)

    control = headers.get("cache-control", "")
    tokens = {token.strip().split("=", 1)[0].lower() for token in control.split(",")}
    if bypass:
        return Directives(read=False, write=False, bypass=True, ttl=ttl)
    stale = _seconds_of(control, "stale-while-revalidate") if "stale-while-revalidate" in tokens else None
    # a bare max-stale accepts any staleness (RFC 9111 §5.2.1.2): it narrows nothing
    on_error = [_seconds_of(control, name) for name in ("stale-if-error", "max-stale") if name in tokens
                and _valued(control, name)]
    return Directives(read="no-cache" not in tokens, write="no-store" not in tokens, ttl=ttl,
                      stale_while_revalidate=stale or None, stale_if_error=min(on_error) if on_error else None)


def _valued(control: str, name: str) -> bool:
    return any(token.strip().lower().startswith(name + "=") for token in control.split(","))


def _seconds_of(control: str, name: str) -> int:
    """The ``N`` of ``name=N`` in a Cache-Control value (RFC 9111 delta-seconds); a bad value is a 400."""
    for token in control.split(","):
        key, _, value = token.strip().partition("=")
        if key.lower() != name:
            continue
        text = value.strip().strip('"')
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_TTL:
            raise BadRequestError(f"Cache-Control {name} must be a whole number of seconds up to {MAX_TTL}, "
                                  f"got {value.strip()!r}", param="cache-control", code="invalid_header")
        return int(text)
    return 0


def choose_ttl(directives: Directives, body: Mapping[str, Any], *, default: int, creative: int,
               creative_temperature: float) -> int:
    """The client's ``x-cache-ttl``; otherwise the creative TTL above the temperature bound."""
    if directives.ttl is not None:
        return directives.ttl
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool) \
            and temperature > creative_temperature:
        return creative
    return default


def parse_chat_request(raw: bytes) -> dict[str, Any]:
    """Parse and check a chat-completions body: a JSON object with ``model`` and ``messages``, nested
    at most :data:`~proxy.core.limits.MAX_JSON_DEPTH` levels, with a short printable ``model``."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # orjson's own limit (1024 levels), far beyond ours
            raise limits.depth_error() from None
        raise BadRequestError(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_body")
    limits.check_depth(body, raw)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("'model' is required and must be a non-empty string.", param="model",
                              code="missing_required_parameter" if model is None else "invalid_type")
    limits.check_model(model)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' is required and must be a non-empty array.", param="messages",
                              code="missing_required_parameter" if messages is None else "invalid_type")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequestError(f"messages[{index}] must be an object with a 'role'.",
                                  param=f"messages[{index}]", code="invalid_type")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise BadRequestError("'stream' must be a boolean.", param="stream", code="invalid_type")
    return body


def wants_stream(body: Mapping[str, Any]) -> bool:
    return body.get("stream") is True


def wants_usage_chunk(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def is_complete(completion: Any) -> bool:
    """A chat completion worth storing: choices present and every one of them finished."""
    if not isinstance(completion, dict) or "error" in completion:
        return False
    choices = completion.get("choices")
    return (isinstance(choices, list) and bool(choices)
            and all(isinstance(c, dict) and c.get("finish_reason") for c in choices))
