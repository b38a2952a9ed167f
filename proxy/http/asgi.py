"""Small pure-ASGI helpers for the hot path, which works on the raw scope instead of Starlette's ``Request``.

Building a ``Request`` and its ``Headers``, and reading the body through ``Request.stream()``, cost more
than the rest of an exact hit together (measured with ``bench/exact_bench.py``); these do the same with
one pass over the scope.
"""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.types import Receive, Scope

from proxy.errors import ClientClosedError, PayloadTooLargeError


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; of a repeated header the last value wins."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", ())}


def raw_header_items(scope: Scope) -> list[tuple[str, str]]:
    """Every request header in order, repeats included (what is forwarded upstream)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", ())]


async def receive_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes without reading them all."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The request body is {declared} bytes; the limit is {limit} bytes "
                                   "(MAX_BODY_BYTES).", code="payload_too_large")
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # the usual case: the whole body in one message
        if len(body) > limit:
            raise PayloadTooLargeError(f"The request body exceeds the limit of {limit} bytes (MAX_BODY_BYTES).")
        return body
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientClosedError("The client closed the connection before sending the whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The request body exceeds the limit of {limit} bytes (MAX_BODY_BYTES).")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


async def read_body(request: Request, limit: int) -> bytes:
    """:func:`receive_body` for routes that do have a Starlette ``Request``."""
    return await receive_body(request.receive, request.headers.get("content-length"), limit)


class RequestIds:
    """Random 32-hex-digit request ids (the shape of ``uuid4().hex``) from the OS's random source.

    Ids are echoed to clients and name requests in feedback, so they must not be guessable (no Mersenne
    Twister); reading 4 KiB of ``os.urandom`` at a time costs one system call per 256 ids instead of one
    per id.
    """

    _BATCH = 256

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(16 * self._BATCH), 0
        self._at = at + 16
        return self._pool[at:at + 16].hex()
