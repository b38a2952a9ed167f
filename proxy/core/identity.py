"""A stored plain body cut once around its ``id`` and ``created``, so that each hit only joins bytes. Pure: no I/O.

Every cached answer goes out under a fresh completion id and ``created`` (see :mod:`proxy.core.replay` and
:mod:`proxy.core.identifiers`). Finding the two members, matching the stored id's prefix and checking it as a
header value depend only on the stored body, yet they cost a hit more than joining the pieces does; an
:class:`IdentityTemplate` does them once per entry (the exact tier keeps decoded entries between hits).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from proxy.core import identifiers
from proxy.core.replay import identity_spans


@dataclass(frozen=True, slots=True)
class IdentityTemplate:
    """``pieces`` around the holes of a body: ``[p0, id, p1]``, or ``[p0, id, p1, created, p2]`` when ``created``
    follows the id (``created_first``: it comes before it). The id hole holds the random token: the stored
    id's prefix (``chatcmpl-``) and the quotes are in the pieces."""

    pieces: tuple[bytes, ...]
    created_first: bool
    original: str  # the stored id
    original_header: bytes | None  # the stored id as the value of x-cache-original-id, when it can be one
    id_prefix: str  # of the fresh ids: the stored id's prefix

    def fill(self, token: str, created: int) -> bytes:
        """The body under the completion id ``id_prefix + token`` (``token`` must need no JSON escaping: the
        callers' are hex) and ``created``."""
        pieces = self.pieces
        if len(pieces) == 2:
            return b"".join((pieces[0], token.encode(), pieces[1]))
        first, second = (str(created).encode(), token.encode()) if self.created_first else \
            (token.encode(), str(created).encode())
        return b"".join((pieces[0], first, pieces[1], second, pieces[2]))


def identity_template(body: bytes, spans: tuple[int, int, int, int] | None = None,
                      stored_id: str | None = None) -> IdentityTemplate | None:
    """The template of a stored plain ``body`` (``spans``: its :func:`~proxy.core.replay.identity_spans`, and
    ``stored_id`` its id, when known without reading it); ``None`` when the body is not a JSON object with a
    string ``id``."""
    if spans is None:
        spans = identity_spans(body)
        if spans is None:
            return None
    start, end, c_start, c_end = spans
    original = stored_id
    if original is None:
        try:
            original = orjson.loads(body[start:end])
        except orjson.JSONDecodeError:
            return None
        if not isinstance(original, str):
            return None
    prefix = identifiers.fresh_completion_id(original, "")
    value = identifiers.header_value(original)
    header = value.encode() if value is not None else None
    opened = b'"' + prefix.encode()  # the id's opening quote and prefix; the token follows
    if c_start < 0:
        pieces: tuple[bytes, ...] = (body[:start] + opened, b'"' + body[end:])
        return IdentityTemplate(pieces, False, original, header, prefix)
    if c_start < start:
        pieces = (body[:c_start], body[c_end:start] + opened, b'"' + body[end:])
        return IdentityTemplate(pieces, True, original, header, prefix)
    pieces = (body[:start] + opened, b'"' + body[end:c_start], body[c_end:])
    return IdentityTemplate(pieces, False, original, header, prefix)
