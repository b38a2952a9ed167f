"""Pure-ASGI middleware: wraps ``send``, so streamed responses stay streamed.

Gives every request an id (the client's ``x-request-id`` when it is sane, else a new one), echoes it in
the response, keeps a :class:`RequestRecord` in ``scope["state"]`` for the handlers to fill, and hands
the record to the observer (then to each listener) once the last byte is sent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.contracts import Observer, RequestRecord
from proxy.http.asgi import RequestIds
from proxy.http.context import request_id_var

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.match(text) else None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, observer: Observer,
                 listeners: Sequence[Callable[[RequestRecord], None]] = ()) -> None:
        self.app = app
        self.observer = observer
        self.listeners = tuple(listeners)
        self.new_id = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or self.new_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        record = RequestRecord(request_id=request_id, route=scope["path"], method=scope["method"],
                               started_at=time.time())
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
                self._done(record)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not done:  # the client went away, or the app failed before finishing the response
                record.duration = time.perf_counter() - started
                record.status = record.status or 500
                record.stream_failed = record.stream
                self._done(record)
            request_id_var.reset(token)

    def _done(self, record: RequestRecord) -> None:
        self.observer.request_done(record)
        for listener in self.listeners:
            listener(record)
