"""The ASGI app cachegate serves: Starlette, with the chat short cut and every error in OpenAI's shape.

The composition root (:func:`proxy.app.create_app`) builds it with the routes and middleware the components
contribute; this module only knows how requests go through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.errors import CachegateError, ClientError, NotFoundError
from proxy.http.protocol import EarlyAnswers
from proxy.http.responses import error_answer, error_response


class CachegateApp(Starlette):
    """Starlette, with one short cut: ``POST /v1/chat/completions`` skips the router and Starlette's
    exception middleware, and goes straight through the middleware to the (guarded) chat endpoint, which
    answers its own errors. Those layers cost about a fifth of an exact hit; every other route keeps them.
    Before that, served with ``uvicorn_options(app.early)``, the exact hits held in memory are answered by
    the protocol itself (:mod:`proxy.chat.memory_hits`).
    """

    def __init__(self, *, chat: ASGIApp, chat_path: str, chat_middleware: Sequence[Middleware],
                 early: EarlyAnswers | None = None, **kwargs: Any) -> None:
        self.early = early  # what the HTTP protocol answers before ASGI (``uvicorn_options(app.early)``)
        for cls, args, options in reversed(chat_middleware):  # the same stack as every route's, built once more
            chat = cls(chat, *args, **options)
        self.chat = chat
        self.chat_path = chat_path
        kwargs.setdefault("exception_handlers", {CachegateError: on_error, HTTPException: http_error,
                                                 Exception: on_error})
        super().__init__(middleware=chat_middleware, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.chat_path and scope["method"] == "POST":
            scope["app"] = self
            await self.chat(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


async def on_error(request: Request, exc: Exception) -> Response:
    return error_answer(exc, request.scope)  # type: ignore[return-value]


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, wrong method) in OpenAI's shape too."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: CachegateError = NotFoundError(f"No route for {request.method} {request.url.path}.",
                                              code="unknown_url")
    else:
        error = ClientError(f"{exc.detail} ({request.method} {request.url.path}).", code="http_error")
        error.status_code = exc.status_code
    return error_response(error, headers=list((exc.headers or {}).items()))  # type: ignore[return-value]
