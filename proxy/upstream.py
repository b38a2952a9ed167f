"""The OpenAI-compatible upstream over one shared, pooled ``httpx.AsyncClient``.

httpx errors are mapped here, at the boundary: a timeout becomes :class:`UpstreamTimeoutError` (504),
any other transport failure :class:`UpstreamUnreachableError` (502), whether it happens while
connecting or in the middle of a streamed body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx

from .contracts import UpstreamResponse
from .errors import UpstreamError, UpstreamTimeoutError, UpstreamUnreachableError


def _mapped(exc: httpx.HTTPError, base_url: str) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(f"The upstream at {base_url} did not answer in time ({type(exc).__name__}).")
    return UpstreamUnreachableError(f"The upstream at {base_url} could not be reached: {type(exc).__name__}"
                                    + (f": {exc}" if str(exc) else ""))


class HttpUpstream:
    def __init__(self, base_url: str, *, timeout: float, max_connections: int = 512,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=128),
            transport=transport,
            follow_redirects=False,
        )

    async def send(self, method: str, path: str, *, headers: Sequence[tuple[str, str]],
                   content: bytes | AsyncIterator[bytes] | None, params: str = "") -> UpstreamResponse:
        """Send ``path`` (relative to the base URL, e.g. ``/chat/completions``); the body is streamed."""
        url = self.base_url + path + (f"?{params}" if params else "")
        request = self._client.build_request(method, url, headers=list(headers), content=content)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _mapped(exc, self.base_url) from exc
        return UpstreamResponse(response.status_code, list(response.headers.multi_items()),
                                self._body(response), response.aclose)

    async def _body(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _mapped(exc, self.base_url) from exc
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
