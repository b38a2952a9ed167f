"""``DEBUG_UPSTREAM=true``: log every upstream request and response, with keys redacted.

:class:`LoggingUpstream` wraps any :class:`~proxy.contracts.Upstream`. Bodies are logged up to
:data:`BODY_LIMIT` bytes; a response body is logged once it has been read (streams as they were relayed).
Credentials are never logged: ``authorization``, ``api-key`` and similar headers show only their last four
characters, and ``sk-…`` style keys inside bodies are masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from proxy.contracts import ByteStream, Upstream, UpstreamResponse

logger = logging.getLogger("cachegate.upstream.debug")

BODY_LIMIT = 4096
SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie", "set-cookie",
                  "openai-organization", "openai-project"}
_KEY_IN_TEXT = re.compile(r"\b(sk|gsk|pk|rk)[-_][A-Za-z0-9_\-]{8,}")


def redact_value(value: str) -> str:
    tail = value[-4:] if len(value) > 12 else ""
    return f"<redacted …{tail}>" if tail else "<redacted>"


def redact_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    return {name: redact_value(value) if name.lower() in SECRET_HEADERS else value for name, value in headers}


def redact_text(data: bytes) -> str:
    text = data[:BODY_LIMIT].decode("utf-8", errors="replace")
    text = _KEY_IN_TEXT.sub(lambda match: redact_value(match.group(0)), text)
    return text + (f"… ({len(data)} bytes)" if len(data) > BODY_LIMIT else "")


class LoggingUpstream:
    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.base_url = inner.base_url

    async def send(self, method: str, path: str, *, headers: Sequence[tuple[str, str]],
                   content: bytes | AsyncIterator[bytes] | None, params: str = "") -> UpstreamResponse:
        body = redact_text(content) if isinstance(content, bytes) else ("<streamed>" if content is not None else "")
        logger.info("upstream request: %s %s%s%s headers=%s body=%s", method, self.base_url, path,
                    f"?{params}" if params else "", redact_headers(headers), body)
        try:
            response = await self.inner.send(method, path, headers=headers, content=content, params=params)
        except Exception as exc:
            logger.info("upstream request failed: %s %s: %s", method, path, exc)
            raise
        logger.info("upstream response: %s %s → %d headers=%s", method, path, response.status_code,
                    redact_headers(response.headers))
        response.body = self._logged(method, path, response.body)
        return response

    async def _logged(self, method: str, path: str, body: ByteStream) -> AsyncGenerator[bytes, None]:
        seen = bytearray()
        size = 0
        try:
            async for chunk in body:
                size += len(chunk)
                if len(seen) < BODY_LIMIT + 1:
                    seen += chunk[: BODY_LIMIT + 1 - len(seen)]
                yield chunk
        finally:
            text = redact_text(bytes(seen[:BODY_LIMIT]))
            logger.info("upstream response body: %s %s (%d bytes): %s%s", method, path, size, text,
                        "…" if size > BODY_LIMIT else "")
            await body.aclose()

    async def aclose(self) -> None:
        await self.inner.aclose()
