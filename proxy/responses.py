"""Minimal ASGI responses for the proxy's hot path.

:class:`BytesResponse` sends a body with raw header tuples (no re-encoding of upstream headers).
:class:`StreamResponse` relays an async iterator of bytes chunk by chunk, stops when the client goes
away, and always closes its source, shielded from cancellation, so the source's ``finally`` (which
releases single-flight waiters and the upstream connection) runs deterministically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

import anyio
from starlette.types import Message, Receive, Scope, Send

from .errors import CachegateError

JSON = "application/json"
SSE = "text/event-stream"


def _encode(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


class BytesResponse:
    def __init__(self, body: bytes, *, status: int = 200, headers: Sequence[tuple[str, str]] = (),
                 media_type: str | None = JSON) -> None:
        self.body = body
        self.status = status
        raw = _encode(headers)
        names = {name for name, _ in raw}
        if media_type and b"content-type" not in names:
            raw.append((b"content-type", media_type.encode()))
        raw.append((b"content-length", str(len(body)).encode()))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def error_response(error: CachegateError, headers: Sequence[tuple[str, str]] = ()) -> BytesResponse:
    return BytesResponse(error.to_body(), status=error.status_code, headers=headers)


class StreamResponse:
    def __init__(self, source: AsyncIterator[bytes], *, status: int = 200,
                 headers: Sequence[tuple[str, str]] = (), media_type: str = SSE) -> None:
        self.source = source
        self.status = status
        raw = _encode(headers)
        if b"content-type" not in {name for name, _ in raw}:
            raw.append((b"content-type", media_type.encode()))
        if media_type == SSE:
            # tell buffering reverse proxies (nginx) in front of us to pass events through at once
            raw += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while True:
                    message: Message = await receive()
                    if message["type"] == "http.disconnect":
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch_disconnect)
            try:
                await send({"type": "http.response.start", "status": self.status, "headers": self.raw_headers})
                async for chunk in self.source:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                with anyio.CancelScope(shield=True):
                    await self.source.aclose()  # type: ignore[attr-defined]
                group.cancel_scope.cancel()
