"""Request ids and completion ids: which a client may choose, and a fresh one per answer. Pure: no I/O.

A client's ``x-request-id`` is used only when it is a full match of :data:`REQUEST_ID` (1-128 of
``A-Z a-z 0-9 . _ : -``). ``re.match`` with ``$`` would also take ``"abc\\n"`` — ``$`` matches before a
trailing newline — and that newline would reach the log and the response header.

Every answer gets its own completion id (a cache hit, a single-flight follower and a semantic neighbour
would otherwise all return the stored one): :func:`fresh_completion_id` keeps the stored id's prefix
(``chatcmpl-``) so clients that look at it see the usual form; the caller supplies the random part
(this module has no randomness, so its results are exact). The stored id goes to the client in
``x-cache-original-id`` only when :func:`header_value` says it can be a header value.
"""

from __future__ import annotations

import re

#: What a client-chosen request id may be.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}-")
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,254}[\x21-\x7e])?")
DEFAULT_PREFIX = "chatcmpl-"


def is_valid_request_id(value: str) -> bool:
    """Whether a client's ``x-request-id`` may be used as the request's id (a full match: no newline)."""
    return REQUEST_ID.fullmatch(value) is not None


def fresh_completion_id(original: object, token: str) -> str:
    """``<prefix of original>`` + ``token``: ``chatcmpl-abc`` with token ``x1`` → ``chatcmpl-x1``.

    The prefix is the stored id's leading word and dash when it has one (``chatcmpl-``, ``gen-``),
    else ``chatcmpl-``."""
    match = _ID_PREFIX.match(original) if isinstance(original, str) else None
    return (match.group() if match else DEFAULT_PREFIX) + token


def header_value(value: object) -> str | None:
    """``value`` if it can be sent as a header value as it is (printable ASCII, up to 256 characters,
    no leading or trailing space), else ``None``."""
    if isinstance(value, str) and _HEADER_VALUE.fullmatch(value):
        return value
    return None
