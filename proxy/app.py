"""``create_app(settings)``: wires the parts together. No globals: everything lives on ``app.state``.

Clients (httpx, Redis, Qdrant, the embedder) are created here without I/O and opened in the lifespan;
they are closed on shutdown after pending background writes are drained.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.admin import OperatorSurface
from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.factory import make_exact_backend
from proxy.cache.singleflight import SingleFlight
from proxy.chat import ChatHandler
from proxy.components import Component, HealthCheck
from proxy.contracts import Embedder, ExactBackend, Observer, RequestRecord, SemanticBackend, SemanticTier, Upstream
from proxy.errors import CachegateError, ClientError, NotFoundError
from proxy.http.middleware import RequestContextMiddleware
from proxy.http.responses import error_answer, error_response
from proxy.monitoring import Monitoring
from proxy.passthrough import PassthroughHandler
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import BackgroundTasks
from proxy.semantic import build_semantic_tier
from proxy.settings import Settings
from proxy.upstream import HttpUpstream

CHAT_ROUTE = "/v1/chat/completions"


@dataclass
class Services:
    """Everything a request handler may need, built once per app."""

    settings: Settings
    upstream: Upstream
    exact: ExactCache
    observer: Observer
    failopen: FailOpen
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    flights: SingleFlight[CachedResponse] = field(default_factory=SingleFlight)
    semantic: SemanticTier | None = None
    #: dependency name → ping, for /health; embedded parts are listed in ``embedded`` instead
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    embedded: dict[str, str] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    #: told about every finished request, after the observer (the dashboard's recent requests)
    request_listeners: list[Callable[[RequestRecord], None]] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)


class CachegateApp(Starlette):
    """Starlette, with one short cut: ``POST /v1/chat/completions`` skips the router and Starlette's
    exception middleware, and goes straight through our pure-ASGI middleware to the chat endpoint (which
    answers its own errors). Those layers cost about a fifth of an exact hit; every other route keeps them.
    Middleware that only guards operator routes (``operator_only``) is left out of the short cut.
    """

    def __init__(self, *, chat: ASGIApp, **kwargs: Any) -> None:
        self.chat = chat
        self._chat_stack: ASGIApp | None = None
        super().__init__(**kwargs)

    def _build_chat_stack(self) -> ASGIApp:
        app = self.chat
        for cls, args, kwargs in reversed(self.user_middleware):  # the same stack, built a second time
            if not getattr(cls, "operator_only", False):
                app = cls(app, *args, **kwargs)
        self._chat_stack = app
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_ROUTE and scope["method"] == "POST":
            scope["app"] = self
            await (self._chat_stack or self._build_chat_stack())(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


async def _on_error(request: Request, exc: Exception) -> Response:
    return error_answer(exc, request.scope)  # type: ignore[return-value]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, wrong method) in OpenAI's shape too."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: CachegateError = NotFoundError(f"No route for {request.method} {request.url.path}.",
                                              code="unknown_url")
    else:
        error = ClientError(f"{exc.detail} ({request.method} {request.url.path}).", code="http_error")
        error.status_code = exc.status_code
    return error_response(error, headers=list((exc.headers or {}).items()))  # type: ignore[return-value]


def create_app(settings: Settings | None = None, *, upstream: Upstream | None = None,
               exact_backend: ExactBackend | None = None, observer: Observer | None = None,
               semantic_backend: SemanticBackend | None = None, embedder: Embedder | None = None) -> CachegateApp:
    settings = settings or Settings.from_env()
    monitoring = Monitoring(settings)
    observer = observer or monitoring.observer
    failopen = FailOpen(observer)
    backend = exact_backend or make_exact_backend(settings)
    services = Services(
        settings=settings,
        upstream=monitoring.upstream(
            upstream or HttpUpstream(settings.upstream_base_url, timeout=settings.upstream_timeout)),
        exact=ExactCache(backend, prefix=settings.cache_key_prefix, observer=observer, failopen=failopen),
        observer=observer,
        failopen=failopen,
    )
    services.closers += [services.upstream.aclose, backend.aclose]
    if backend.name == "memory":
        services.embedded["exact_cache"] = "memory"
    else:
        services.health_checks[backend.name] = backend.ping
    services.semantic = build_semantic_tier(settings, observer=observer, failopen=failopen, tasks=services.tasks,
                                            backend=semantic_backend, embedder=embedder)
    services.components = [monitoring, OperatorSurface(settings)]
    if services.semantic is not None:
        services.components.insert(0, services.semantic)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for component in services.components:
                await component.start(services)
                started.append(component)
            # Everything built so far (modules, clients, the embedding model) lives as long as the process:
            # moved out of the collector's sight, a full collection no longer walks it. Without this, full
            # collections took up to 38 ms under load and set the p99 of Redis hits (bench/exact_bench.py).
            gc.freeze()
            yield
        finally:
            await services.tasks.drain()
            for component in reversed(started):
                with contextlib.suppress(Exception):
                    await component.stop()
            for close in reversed(services.closers):
                with contextlib.suppress(Exception):
                    await close()

    chat = ChatHandler(settings, upstream=services.upstream, exact=services.exact, flights=services.flights,
                       tasks=services.tasks, semantic=services.semantic)
    passthrough = PassthroughHandler(settings, services.upstream)
    routes: list[BaseRoute] = [
        Route(CHAT_ROUTE, chat, methods=["POST"]),
        Route("/v1/{path:path}", passthrough.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    middleware = [Middleware(RequestContextMiddleware, observer=observer, listeners=services.request_listeners)]
    for component in services.components:
        routes += component.routes(services)  # after /v1: the hot path matches first
        middleware += component.middleware(services)
    app = CachegateApp(
        chat=chat,
        routes=routes,
        middleware=middleware,
        exception_handlers={CachegateError: _on_error, HTTPException: _http_error, Exception: _on_error},
        lifespan=lifespan,
    )
    app.state.services = services
    return app
