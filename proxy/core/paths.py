"""From a ``/v1`` request path to the path sent upstream, without a way out of ``/v1``. Pure: no I/O.

``UPSTREAM_BASE_URL`` usually ends in ``/v1`` and the upstream is sent our key, so a path that climbs
out (``/v1/../key/generate``, ``/v1/%2e%2e/…``) would reach the upstream's host outside its API with
cachegate's credentials. The path is therefore read from the raw, still-encoded request target (ASGI's
``raw_path``: the decoded ``path`` has already turned ``%2f`` into a separator), split at ``/``, each
segment percent-decoded once, and refused (404) when a segment, decoded, is:

* empty (``//``, a trailing ``/``) or a dot segment (``.``, ``..``; also ``..;x``, which servlet
  containers treat as ``..``);
* holding a ``\\`` (``%5c``: a separator to some upstream or gateway), a control character, or a ``%``
  (a second decoding — by a gateway on the way — would make ``%252e%252e`` a ``..``);
* holding an encoded ``/`` (``%2F``) that makes one of the parts between the slashes empty or a dot
  segment (``models%2F..%2Fkey``, ``%2F``);
* a malformed escape (``%zz``) or not UTF-8.

Why ``%2F`` is otherwise allowed: model ids hold slashes (OpenRouter's ``openai/gpt-4o``, Fireworks'
``accounts/fireworks/models/…``) and the official SDK sends ``client.models.retrieve("openai/gpt-4o")``
as ``/models/openai%2Fgpt-4o``. An upstream (or a gateway) that decodes ``%2F`` into a separator sees
only parts that are checked the same way as real segments, so it cannot climb either; one that does not
sees one segment, as the client meant.

The path sent on is built from the decoded segments, each percent-encoded again (RFC 3986 ``pchar``;
a ``/`` inside a segment goes on as ``%2F``), so what the upstream decodes is exactly what was checked.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

from proxy.errors import NotFoundError

PREFIX = ("v1",)
_SAFE = "!$&'()*+,;=:@"  # RFC 3986 sub-delims, ":" and "@": what a segment may hold unencoded
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN = re.compile(r"[\\%\x00-\x1f\x7f]")


def _refuse(raw_path: str, why: str) -> NotFoundError:
    return NotFoundError(f"No such path: {raw_path[:200]!r} ({why}).", code="not_found")


def _decode(segment: str, raw_path: str) -> str:
    if _BAD_ESCAPE.search(segment):
        raise _refuse(raw_path, "malformed percent-escape")
    try:
        text = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(raw_path, "a segment is not UTF-8") from None
    for part in text.split("/"):  # one part unless the segment held an encoded "/"
        if not part:
            raise _refuse(raw_path, "empty segment")
        if part.split(";", 1)[0] in (".", ".."):
            raise _refuse(raw_path, "dot segment")
    if _FORBIDDEN.search(text):
        raise _refuse(raw_path, "a segment holds a backslash, a control character or '%'")
    return text


def upstream_segments(raw_path: bytes | str, *, prefix: tuple[str, ...] = PREFIX) -> list[str]:
    """The decoded segments of ``raw_path`` after ``prefix``; :class:`NotFoundError` for any path that
    could mean something else upstream. ``raw_path`` is the request target without its query."""
    text = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    if not text.startswith("/") or not text.isascii():
        raise _refuse(text, "not an absolute ASCII path")
    segments = [_decode(segment, text) for segment in text[1:].split("/")]
    if tuple(segments[:len(prefix)]) != prefix:
        raise _refuse(text, "outside /" + "/".join(prefix))
    rest = segments[len(prefix):]
    if not rest:
        raise _refuse(text, "no path below /" + "/".join(prefix))
    return rest


def encode_segments(segments: list[str]) -> str:
    """``/a/b`` from segments, each percent-encoded as a path segment."""
    return "".join("/" + quote(segment, safe=_SAFE) for segment in segments)


def upstream_path(raw_path: bytes | str, *, prefix: tuple[str, ...] = PREFIX) -> str:
    """The path to send upstream, relative to ``UPSTREAM_BASE_URL``: ``/v1/models/gpt-4o`` → ``/models/gpt-4o``."""
    return encode_segments(upstream_segments(raw_path, prefix=prefix))
