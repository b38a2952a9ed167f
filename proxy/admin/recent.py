"""The last requests the proxy answered, for the dashboard: no prompts, answers or keys, only what
happened (model, cache outcome, status, latency, tokens)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..contracts import RequestRecord


def _tokens(usage: Mapping[str, Any] | None) -> int | None:
    if not isinstance(usage, Mapping):
        return None
    total = usage.get("total_tokens")
    return total if isinstance(total, int) else None


class RecentRequests:
    def __init__(self, size: int = 50) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=size)

    def add(self, record: RequestRecord | None, *, path: str, method: str, status: int, duration: float,
            cache: str | None) -> None:
        outcome = record.outcome if record is not None else "none"
        if outcome == "none" and cache == "BYPASS":
            outcome = "bypass"
        self._items.appendleft({
            "time": time.time(),
            "request_id": record.request_id if record is not None else None,
            "method": method,
            "path": path,
            "model": record.model if record is not None else None,
            "outcome": outcome,
            "tier": record.tier if record is not None else None,
            "stream": bool(record.stream) if record is not None else False,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "tokens": _tokens(record.usage) if record is not None else None,
            "similarity": record.similarity if record is not None else None,
        })

    def snapshot(self, limit: int | None = None) -> list[dict[str, Any]]:
        items = list(self._items)
        return items if limit is None else items[:limit]


class RecentRequestsMiddleware:
    """Pure ASGI on ``/v1/*``: notes each answered request once its last byte is sent."""

    def __init__(self, app: ASGIApp, recent: RecentRequests) -> None:
        self.app = app
        self.recent = recent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        cache: str | None = None
        noted = False

        def note(final_status: int) -> None:
            nonlocal noted
            if noted:
                return
            noted = True
            record = scope.get("state", {}).get("record")
            self.recent.add(record if isinstance(record, RequestRecord) else None, path=scope["path"],
                            method=scope["method"], status=final_status, duration=time.perf_counter() - started,
                            cache=cache)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, cache
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-cache":
                        cache = value.decode("latin-1")
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                note(status)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not noted:
                note(status or 500)
