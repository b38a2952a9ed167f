"""The OpenAI-compatible upstream over one shared, pooled ``aiohttp.ClientSession``.

Why aiohttp and not httpx: every miss pays for the HTTP client twice (sending the request, parsing the
answer), and the issue's budget for a miss is 1 ms over calling the upstream directly. Measured against
the simulator (``bench/exact_bench.py``'s miss rows; 500 sequential calls), httpx's async stack took
0.80 ms per call and aiohttp 0.40 ms: its C parser and lean pool leave more than half the budget free.

aiohttp errors are mapped here, at the boundary: a timeout (connecting, waiting for a pooled connection,
or between two reads of the body) becomes :class:`UpstreamTimeoutError` (504), any other transport
failure :class:`UpstreamUnreachableError` (502), whether it happens while connecting or in the middle of
a streamed body. The session is created on first use, inside the running loop (no I/O in constructors).

A request sent on a *pooled* connection that fails before any byte of an answer (reset, or closed without
one) is sent once more, on another connection, when its body can be sent again: the upstream had closed
that idle connection as we took it (uvicorn closes them after 5 s, aiohttp keeps them 15 s), so the request
never reached it. Browsers resend a POST in exactly this case; aiohttp itself does only for idempotent
methods. A failure on a new connection is never sent again (the upstream may have got it).

URLs are handed to aiohttp already encoded (``yarl.URL(..., encoded=True)``): by default yarl re-quotes
the path and resolves dot segments (``/v1/%2e%2e/key`` becomes ``/key``), and decodes ``%2F`` in the
query. The path comes checked and encoded from :mod:`proxy.core.paths` (or is a constant), the query as
the client sent it, with only characters a query cannot hold escaped; a query in ``UPSTREAM_BASE_URL``
(``?api-version=``) is kept in front of the client's.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import aiohttp
import certifi
import yarl

from proxy.contracts import UpstreamResponse
from proxy.errors import SettingsError, UpstreamError, UpstreamTimeoutError, UpstreamUnreachableError
from proxy.redaction import scrub

_FAILURES = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
#: how a pooled connection the upstream closed fails a request before an answer (connecting is not one)
_STALE = (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)
#: what a query may hold as it is (RFC 3986 ``query``: pchar, "/" and "?", and "%" of escapes already made)
_QUERY_SAFE = "!$&'()*+,;=:@/?%"


def _mapped(exc: BaseException, base_url: str) -> UpstreamError:
    """The error a client sees (502/504 body, a stream's error event): it names the upstream, but without
    the credentials ``UPSTREAM_BASE_URL`` may hold (``user:pw@``, ``?key=``), which aiohttp's own message
    may repeat."""
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's timeouts all derive from it
        timeout = UpstreamTimeoutError(scrub(f"The upstream at {base_url} did not answer in time "
                                             f"({type(exc).__name__})."))
        timeout.after_sending = not isinstance(exc, aiohttp.ConnectionTimeoutError)
        return timeout
    return UpstreamUnreachableError(scrub(f"The upstream at {base_url} could not be reached: {type(exc).__name__}"
                                          + (f": {exc}" if str(exc) else "")))


def env_proxy(url: str) -> str | None:
    """The proxy that HTTP_PROXY/HTTPS_PROXY/NO_PROXY name for ``url`` (httpx honoured them too).

    Read once: aiohttp's own ``trust_env`` reads them, and ``~/.netrc``, again on every request, which
    measured 0.8 ms per call.
    """
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class _Attempt:
    """One try of a request: whether it went on a pooled connection (aiohttp's trace tells)."""

    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


async def _note_reused(session: aiohttp.ClientSession, context: SimpleNamespace,
                       params: aiohttp.TraceConnectionReuseconnParams) -> None:
    attempt = context.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.reused = True


@functools.lru_cache(maxsize=4)
def tls_context(cafile: str) -> ssl.SSLContext:
    """One client context per CA bundle per process (a context is safe to share between sessions); a bundle
    that cannot be read stops start-up."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"SSL_CERT_FILE: cannot read the CA bundle {cafile}: {exc}") from exc


class HttpUpstream:
    def __init__(self, base_url: str, *, timeout: float, max_connections: int = 512) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        # the operator's URL, encoded once by yarl; requests add a checked path to it, never re-encoded
        self._root = str(yarl.URL(parts._replace(query="", fragment="").geturl())).rstrip("/")
        self._base_query = parts.query
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=min(timeout, 10.0),
                                              sock_read=timeout)
        self._max_connections = max_connections
        # The CA bundle httpx and the openai SDK use (certifi), unless SSL_CERT_FILE names another. Read here,
        # at start-up: loading it took 24 ms, which held the event loop (every request in flight) on the
        # first miss when the session was opened (bench/loop_lag.py showed it, 10 ms into that stall).
        self._ssl = tls_context(os.environ.get("SSL_CERT_FILE") or certifi.where())
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
        reuse = aiohttp.TraceConfig()
        reuse.on_connection_reuseconn.append(_note_reused)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                              proxy=env_proxy(self.base_url), auto_decompress=True,
                                              trace_configs=[reuse])
        return self._session

    async def send(self, method: str, path: str, *, headers: Sequence[tuple[str, str]],
                   content: bytes | AsyncIterator[bytes] | None, params: str = "") -> UpstreamResponse:
        """Send ``path`` (relative to the base URL, e.g. ``/chat/completions``); the body is streamed."""
        session = self._session or self._open()
        url = self.url_for(path, params)
        again = not isinstance(content, AsyncIterator)  # a streamed body is gone once sent
        while True:
            attempt = _Attempt()
            try:
                response = await session.request(method, url, headers=list(headers), data=content,
                                                 allow_redirects=False, trace_request_ctx=attempt)
                break
            except _STALE as exc:
                if not (again and attempt.reused) or isinstance(exc, aiohttp.ClientConnectorError):
                    raise _mapped(exc, self.base_url) from exc
                again = False  # once: the next connection may be a new one, whose failure is the upstream's
            except _FAILURES as exc:
                raise _mapped(exc, self.base_url) from exc
        # Bodies are decoded here (gzip, deflate), so content-encoding/-length are not passed on (see headers.py).
        raw_headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers]

        async def release() -> None:
            response.release()  # back to the pool when the body was read to the end, else closed

        return UpstreamResponse(response.status, raw_headers, self._body(response), release)

    def url_for(self, path: str, query: str = "") -> yarl.URL:
        """The URL for ``path`` (already checked and encoded) and the client's ``query``, taken as they are."""
        query = "&".join(part for part in (self._base_query, quote(query, safe=_QUERY_SAFE)) if part)
        return yarl.URL(self._root + path + (f"?{query}" if query else ""), encoded=True)

    async def _body(self, response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in response.content.iter_any():  # whatever has arrived: SSE events go on at once
                yield chunk
        except _FAILURES as exc:
            response.close()
            raise _mapped(exc, self.base_url) from exc
        finally:
            response.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
