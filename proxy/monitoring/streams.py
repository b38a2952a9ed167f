"""Pure-ASGI middleware that watches streamed (SSE) responses: counts the active ones and, when the handler
did not measure it (cache hits replay without an upstream), records the time to the first byte.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .observer import MonitoringObserver

_SSE = b"text/event-stream"


class StreamWatch:
    def __init__(self, app: ASGIApp, observer: MonitoringObserver) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):  # streams come from proxied routes
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observer = self.observer
        streaming = False

        async def watch(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name == b"content-type":
                        if value.startswith(_SSE):
                            streaming = True
                            observer.active_streams += 1
                        break
            elif streaming and message["type"] == "http.response.body":
                record = scope.get("state", {}).get("record")
                if record is not None and record.ttft is None and message.get("body"):
                    record.ttft = time.perf_counter() - started
                if not message.get("more_body", False):
                    streaming = False
                    observer.active_streams -= 1
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if streaming:  # the client went away mid-stream
                observer.active_streams -= 1
