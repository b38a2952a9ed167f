"""Pure-ASGI middleware: wraps ``send``, so streamed responses stay streamed.

Gives every request an id (the client's ``x-request-id`` when it is sane, else a new one), echoes it in
the response, keeps a :class:`RequestRecord` in ``scope["state"]`` for the handlers to fill, and hands
the record to the observer (then to each listener) once the last byte is sent.

A client's id is sane when it fully matches :data:`proxy.core.identifiers.REQUEST_ID` (no trailing
newline), and when ``taken`` does not say it already names an earlier request that feedback can refer to
(the semantic feedback book): a client could otherwise reuse another request's id and have feedback on
that request evict the entry that answered its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.contracts import Observer, RequestRecord
from proxy.core.identifiers import is_valid_request_id
from proxy.http.asgi import RequestIds
from proxy.http.context import request_id_var


def _incoming_request_id(headers: Sequence[tuple[bytes, bytes]], taken: Callable[[str], bool] | None) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if not is_valid_request_id(text) or (taken is not None and taken(text)):
                return None
            return text
    return None


class RequestRecords:
    """Where each request's :class:`RequestRecord` begins and ends: its id (the client's, when sane) and the
    observer and listeners it is handed to once the last byte is sent. One for the process, shared by
    :class:`RequestContextMiddleware` and the hits answered before ASGI (:mod:`proxy.chat.memory_hits`)."""

    def __init__(self, observer: Observer, listeners: Sequence[Callable[[RequestRecord], None]] = (),
                 taken: Callable[[str], bool] | None = None) -> None:
        self.observer = observer
        self.listeners = tuple(listeners)
        self.taken = taken  # ids a client may not choose any more (see the module's docstring)
        self.new_id = RequestIds()

    def open(self, headers: Sequence[tuple[bytes, bytes]], path: str, method: str) -> RequestRecord:
        request_id = _incoming_request_id(headers, self.taken) or self.new_id()
        return RequestRecord(request_id=request_id, route=path, method=method, started_at=time.time())

    def close(self, record: RequestRecord) -> None:
        self.observer.request_done(record)
        for listener in self.listeners:
            listener(record)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, records: RequestRecords) -> None:
        self.app = app
        self.records = records
        self.observer = records.observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = self.records.open(scope["headers"], scope["path"], scope["method"])
        request_id = record.request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        scope.setdefault("state", {})["record"] = record
        header = (b"x-request-id", request_id.encode())
        done = False

        async def send_wrapper(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
                self.observer.response_started(record)  # monitoring counts active streams with it
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not done:
                done = True
                record.duration = time.perf_counter() - started
                await send(message)
                self.records.close(record)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not done:  # the client went away, or the app failed before finishing the response
                record.duration = time.perf_counter() - started
                record.status = record.status or 500
                record.stream_failed = record.stream
                self.records.close(record)
            request_id_var.reset(token)
