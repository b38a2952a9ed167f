"""One exception tree for cachegate.

Every error a client can see is a :class:`CachegateError` that knows its HTTP status and renders itself
as an OpenAI-style ``{"error": {...}}`` body, so handlers raise and one place answers. Errors of the
libraries we talk to (aiohttp, redis, qdrant, the embedding service) are mapped to these at the boundary
with ``raise ... from exc``::

    CachegateError (500), an embedding_service.errors.OpenAIStyleError
    ├── SettingsError (also ValueError): a bad setting; stops start-up naming it
    ├── ClientError (400): bad input, answered, nothing stored or sent upstream
    │   ├── BadRequestError (400)
    │   ├── PayloadTooLargeError (413)
    │   ├── ClientClosedError (499): the client went away mid-request
    │   ├── UnauthorizedError (401), ForbiddenError (403), NotFoundError (404)
    │   └── RateLimitedError (429)
    ├── UpstreamError (502)
    │   ├── UpstreamUnreachableError (502)
    │   └── UpstreamTimeoutError (504)
    ├── UnavailableError (503): an operator route whose dependency is down (a clear, the usage history)
    └── BackendError: a cache dependency failed (Redis, Qdrant, the embedding service); never reaches a
        client: callers fail open

Outside the tree, on purpose, because no client ever sees them: ``EntryFormatError`` (a stored entry that
cannot be read; the entry is dropped), ``proxy.core.folding.Unfoldable`` (a streamed answer the assembler
cannot fold faithfully; the answer is relayed and not stored: it never leaves the assembler), and the
embedding service's own tree (:mod:`embedding_service.errors`), which ships without this.
"""

from __future__ import annotations

from embedding_service.errors import OpenAIStyleError


class CachegateError(OpenAIStyleError):
    """Base of every error cachegate raises on purpose (the rendering is shared with the embedding
    service: :class:`embedding_service.errors.OpenAIStyleError`)."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None


class SettingsError(CachegateError, ValueError):
    """A setting has a value cachegate cannot start with; the message names the setting."""

    code = "invalid_setting"


# -- client errors -------------------------------------------------------------------------------


class ClientError(CachegateError):
    status_code = 400
    error_type = "invalid_request_error"


class BadRequestError(ClientError):
    code = "invalid_request"


class PayloadTooLargeError(ClientError):
    status_code = 413
    code = "payload_too_large"


class ClientClosedError(ClientError):
    """The client went away mid-request; nobody reads the answer, but the log and the metrics see 499."""

    status_code = 499
    code = "client_closed_request"


class UnauthorizedError(ClientError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class ForbiddenError(ClientError):
    status_code = 403
    error_type = "permission_error"
    code = "forbidden"


class NotFoundError(ClientError):
    status_code = 404
    code = "not_found"


class RateLimitedError(ClientError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# -- upstream errors -----------------------------------------------------------------------------


class UpstreamError(CachegateError):
    status_code = 502
    error_type = "upstream_error"


class UpstreamUnreachableError(UpstreamError):
    code = "upstream_unreachable"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    #: whether the request had been sent when time ran out (no answer came back), rather than the connection
    #: not being made: the upstream may then have taken the prompt, and billed it
    after_sending = False


class UnavailableError(CachegateError):
    """An operator route cannot do its work because a dependency is down."""

    status_code = 503
    error_type = "server_error"
    code = "unavailable"


# -- cache backend errors: never reach a client, the cache fails open ---------------------------------


class BackendError(CachegateError):
    """A cache dependency (Redis, Qdrant, the embedding service) failed; callers fail open."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component

