"""The embedding service's own errors, so it ships without the proxy.

- :class:`ServiceError` and its subclasses are what the service answers: each knows its HTTP status and
  renders itself as an OpenAI-style ``{"error": {...}}`` body.
- :class:`EmbeddingError` is what an embedder (in-process or over HTTP) raises to its caller when it cannot
  embed; the proxy maps it to its own ``BackendError`` at that boundary and fails open.

Both services answer errors in one shape, OpenAI's: :class:`OpenAIStyleError` renders it, and the proxy's
own tree (``proxy.errors.CachegateError``) is built on it too.

::

    Exception
    ├── OpenAIStyleError: knows its HTTP status, renders ``{"error": {...}}``
    │   └── ServiceError (500): what this service answers
    │   ├── BadRequestError (400)
    │   ├── PayloadTooLargeError (413)
    │   ├── ModelNotReadyError (503)
    │   └── SettingsError (also ValueError): a bad EMBED_* setting; stops start-up
    └── EmbeddingError: an embedder could not embed (``component: message``)
"""

from __future__ import annotations

from typing import Any

import orjson


class OpenAIStyleError(Exception):
    """An error a client sees: an HTTP status and an OpenAI-style ``{"error": {...}}`` body."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param,
                          "code": self.code}}

    def to_body(self) -> bytes:
        return orjson.dumps(self.to_dict())


class ServiceError(OpenAIStyleError):
    """Base of every error the embedding service answers."""


class BadRequestError(ServiceError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class PayloadTooLargeError(BadRequestError):
    status_code = 413
    code = "payload_too_large"


class ModelNotReadyError(ServiceError):
    status_code = 503
    code = "model_loading"


class SettingsError(ServiceError, ValueError):
    """A setting has a value the service cannot start with; the message names the setting."""

    code = "invalid_setting"


class EmbeddingError(Exception):
    """An embedder could not embed (down, slow, malformed answer); callers fail open."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"{component}: {message}")
        self.component = component
        self.message = f"{component}: {message}"
