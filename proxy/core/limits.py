"""Bounds on what a client sends, checked once when the request is parsed, and text made safe for the log.
Pure: no I/O.

``model`` is kept in places that grow with every distinct value (an LRU of ids, metric labels, ledger
rows, one warning per unknown name) and is written into the request log, so it is at most
:data:`MAX_MODEL_CHARS` characters, all printable (``str.isprintable``: no control, format or line
separator characters).

A body is nested at most :data:`MAX_JSON_DEPTH` levels deep (the top-level object is level 1). The JSON
reader takes 1024 levels, but the cache key cannot be built for much less: ``orjson.dumps`` and so
``canonical_bytes`` fail ("Recursion limit reached") for a value nested 255 levels deep, and
``request_digest`` wraps the body one level deeper, so a body of 254 levels fails there (measured with
orjson 3.13; see ``tests/unit/core/test_limits.py``). 128 leaves room for every real request — a JSON
schema nested ten levels is about 25 levels of body — and is checked once, at parse time, so everything
after it (key, semantic scope, storage) can take the depth for granted.

:func:`escape_log_field` writes a client's text into a log line so that it stays one line and shows what
was sent: a backslash and every non-printable character become an escape (``\\n``, ``\\x1b``,
``\\u202e``).
"""

from __future__ import annotations

from typing import Any

from proxy.errors import BadRequestError

MAX_MODEL_CHARS = 256
MAX_JSON_DEPTH = 128
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def check_model(model: str) -> None:
    """A :class:`BadRequestError` naming ``model`` unless it is short and printable."""
    if len(model) > MAX_MODEL_CHARS:
        raise BadRequestError(f"'model' must be at most {MAX_MODEL_CHARS} characters, got {len(model)}.",
                              param="model", code="invalid_value")
    if not model.isprintable():
        raise BadRequestError("'model' must contain only printable characters.", param="model",
                              code="invalid_value")


def depth_error() -> BadRequestError:
    return BadRequestError(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
                           code="invalid_body")


def exceeds_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the parsed JSON ``value`` nests deeper than ``limit`` levels (iterative: no recursion)."""
    if type(value) not in (dict, list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


def check_depth(body: Any, raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """:func:`depth_error` if ``body`` (parsed from ``raw``) nests deeper than ``limit``. A body with
    fewer brackets than ``limit`` cannot, which the bytes tell without a walk (most requests)."""
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return
    if exceeds_depth(body, limit):
        raise depth_error()


def escape_log_field(text: str) -> str:
    """``text`` with ``\\`` and every non-printable character escaped, so it is one honest log field."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        if char in _NAMED:
            out.append(_NAMED[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)
