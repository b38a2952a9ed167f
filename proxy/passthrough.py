"""Every other ``/v1/*`` request: passed to the upstream unchanged, bodies streamed both ways.

The path sent on is built from the raw, still-encoded request target by :func:`proxy.core.paths.upstream_path`:
a path that could mean something outside ``/v1`` to the upstream (``..``, ``%2e%2e``, ``//``) is a 404 and
never leaves, since the upstream would be sent cachegate's ``UPSTREAM_API_KEY`` with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.types import ASGIApp

from proxy.component import Guard, RouteSpec, route
from proxy.contracts import Upstream
from proxy.core.paths import upstream_path
from proxy.http import headers as hdr
from proxy.http.responses import StreamResponse
from proxy.settings import Settings


class PassthroughHandler:
    def __init__(self, settings: Settings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream

    def routes(self) -> list[RouteSpec]:
        return [route("/v1/{path:path}", self.handle, "GET", "POST", "PUT", "PATCH", "DELETE", guard=Guard.CLIENT)]

    async def handle(self, request: Request) -> ASGIApp:
        # raw_path: the decoded path has turned %2F into "/" and %2e%2e into ".."; ASGI servers that give no
        # raw_path leave only the decoded one, which is checked the same way (and refused if it holds "%").
        path = upstream_path(request.scope.get("raw_path") or request.scope["path"])
        has_body = request.method not in {"GET", "HEAD", "DELETE", "OPTIONS"} or \
            "content-length" in request.headers or "transfer-encoding" in request.headers
        content: AsyncIterator[bytes] | None = request.stream() if has_body else None
        response = await self.upstream.send(
            request.method, path, headers=hdr.to_upstream(request.headers.items(), self.settings.upstream_api_key),
            content=content, params=request.url.query,
        )
        media_type = dict(response.headers).get("content-type", "application/octet-stream")
        return StreamResponse(response.body, status=response.status_code,
                              headers=hdr.to_client(response.headers), media_type=media_type)
