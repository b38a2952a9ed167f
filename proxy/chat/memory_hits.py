"""Exact hits the process holds in memory, answered before ASGI (an :class:`~proxy.http.protocol.EarlyAnswers`).

:class:`~proxy.http.protocol.EarlyAnswerProtocol` hands every ``POST /v1/chat/completions`` whose body is in to
:meth:`MemoryHits.answer` first. It does what the chat endpoint and the request-context middleware do for
such a request, with the same parts: :class:`~proxy.core.request.ChatRequestParser` parses it,
:meth:`ChatPipeline.answer_at_once <proxy.chat.pipeline.ChatPipeline.answer_at_once>` finds a plain exact hit
in the in-process level (the LRU, or the tracked copy of Redis) and builds its :class:`Answer` as a hit always
is, and :class:`~proxy.http.middleware.RequestRecords` gives the request its id and hands its record to the
observer and the listeners once it is written. The response is byte for byte what the endpoint sends (the
tests compare both paths). Anything else is ``None``, with nothing counted: a bad body (the endpoint
answers it, with the error naming the problem), a miss, a stream, a bypass.

The composition root builds it only when nothing else wraps the chat route: no client keys or rate limit
(their checks await) and no contributed middleware (CORS). Every header it sends is safe as it is, so
uvicorn's checks are not needed: the cache's own headers, the key (the prefix, checked here once, and hex
digits), the entry's original id (kept only when it can be a header value), and the request id (the
client's only when it is sane).
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HEADER_VALUE_RE

from proxy.chat.endpoint import as_response
from proxy.chat.pipeline import ChatPipeline
from proxy.core.request import ChatRequestParser
from proxy.errors import CachegateError
from proxy.http.context import request_id_var
from proxy.http.middleware import RequestRecords
from proxy.http.protocol import EarlyReply
from proxy.http.responses import BytesResponse


def can_answer_early(prefix: str) -> bool:
    """Whether keys under ``prefix`` (CACHE_KEY_PREFIX) can go in ``x-cache-key`` without uvicorn's check (its
    own expression for a header value, applied once here instead of on every hit)."""
    return prefix.isascii() and HEADER_VALUE_RE.search(prefix.encode("ascii")) is None


class MemoryHits:
    def __init__(self, parser: ChatRequestParser, pipeline: ChatPipeline, records: RequestRecords, *, path: str,
                 max_body_bytes: int) -> None:
        self.parser = parser
        self.pipeline = pipeline
        self.records = records
        self.path = path
        self.max_body_bytes = max_body_bytes

    def answer(self, scope: MutableMapping[str, Any], body: bytes) -> EarlyReply | None:
        if len(body) > self.max_body_bytes:
            return None  # the endpoint's 413
        started = time.perf_counter()
        headers = scope["headers"]
        try:
            request = self.parser.parse(body, headers, scope["query_string"].decode("latin-1"))
        except CachegateError:
            return None  # the endpoint's 400, naming the problem
        record = self.records.open(headers, self.path, "POST")
        token = request_id_var.set(record.request_id)
        try:
            answer = self.pipeline.answer_at_once(request, record)
        finally:
            request_id_var.reset(token)
        if answer is None:
            return None
        response = as_response(answer)
        assert isinstance(response, BytesResponse)  # answer_at_once answers no stream
        record.status = response.status
        self.records.observer.response_started(record)

        def done() -> None:
            record.duration = time.perf_counter() - started
            self.records.close(record)

        return EarlyReply(response.status, [*response.raw_headers, (b"x-request-id", record.request_id.encode())],
                          response.body, done)
