"""Applying each route's :class:`~proxy.component.Guard`, and what guards the proxied API as a whole.

:meth:`Access.guard` wraps one route's ASGI app in the check its guard asks for: admin and monitor keys
(:class:`~proxy.access.auth.AccessControl`), or for ``Guard.CLIENT`` routes (``/v1/*``) the client's key
(``CLIENT_API_KEYS``, :mod:`proxy.access.clients`) and the rate limit (:class:`ClientChecked`). The
check runs only once a route has matched, so an unknown path is a plain 404 and the hot path checks nothing
it does not need. :class:`Access` is also the component that contributes CORS (``ALLOWED_ORIGINS``), for
every route but ``/admin*`` (:class:`CorsExceptAdmin`), and that resolves the admin key at start
(:mod:`proxy.access.admin_key`).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.access import admin_key
from proxy.access.auth import AccessControl
from proxy.access.clients import ClientKeys
from proxy.access.ratelimit import Decision, RateLimiter
from proxy.component import Contribution, Guard
from proxy.core.canonical import api_key_of
from proxy.errors import BadRequestError, CachegateError, RateLimitedError, UnauthorizedError
from proxy.http.asgi import headers_of
from proxy.http.params import check_query
from proxy.http.responses import BytesResponse, error_response
from proxy.settings import Settings

#: response headers a browser client may read across origins
EXPOSED_HEADERS = ["x-cache", "x-cache-tier", "x-cache-key", "x-cache-similarity", "age", "x-request-id",
                   "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]


class Checked:
    """Pure ASGI: runs ``app`` only when ``access`` lets this guard through; otherwise answers the error (for
    ``Guard.MONITOR_PAGE`` a missing key is answered with ``locked``, the page that asks for it). With
    ``params`` (admin routes) a query parameter outside them is a 400, checked once the caller is let in."""

    def __init__(self, app: ASGIApp, guard: Guard, access: AccessControl, locked: ASGIApp | None = None,
                 params: frozenset[str] | None = None) -> None:
        self.app = app
        self.guard = guard
        self.access = access
        self.locked = locked
        self.params = params

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        error: CachegateError | None = self.access.check(self.guard, scope, headers_of(scope))
        if error is None and self.params is not None:
            try:
                check_query(scope.get("query_string", b""), self.params, f"{scope['method']} {scope['path']}")
            except BadRequestError as refused:
                error = refused
        if error is None:
            await self.app(scope, receive, send)
            return
        if self.locked is not None and isinstance(error, UnauthorizedError):
            await self.locked(scope, receive, send)
            return
        extra = [("www-authenticate", 'Bearer realm="cachegate"')] if error.status_code == 401 else []
        response: BytesResponse = error_response(error, headers=[*extra, ("cache-control", "no-store")])
        await response(scope, receive, send)


class ClientChecked:
    """Pure ASGI around a ``Guard.CLIENT`` route (``/v1/*``): the client's key must be on ``keys`` (when there
    is a list), and the request within the rate limit (when there is one). The budget is the verified key's,
    else the client address's, so guessing keys spends the address's budget; the limit is applied first, so
    a refused key still counts. Every answer carries the rate-limit headers."""

    def __init__(self, app: ASGIApp, keys: ClientKeys | None, limiter: RateLimiter | None) -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verified = self.keys.verified(api_key_of(headers_of(scope))) if self.keys is not None else None
        decision: Decision | None = None
        if self.limiter is not None:
            decision = await self.limiter.hit(self.limiter.identity(scope, verified))
            if not decision.allowed:
                error = RateLimitedError(f"Rate limit of {decision.limit} requests per minute reached; "
                                         f"retry in {decision.reset} s.", retry_after=decision.reset)
                await error_response(error, headers=[*decision.headers(), ("retry-after", str(decision.reset))])(
                    scope, receive, send)
                return
        limits = decision.headers() if decision is not None else []
        if self.keys is not None and verified is None:
            refused = UnauthorizedError("This proxy needs one of its client keys (CLIENT_API_KEYS) as "
                                        "'Authorization: Bearer <key>'.")
            await error_response(refused, headers=[*limits, ("www-authenticate", 'Bearer realm="cachegate"')])(
                scope, receive, send)
            return
        if not limits:
            await self.app(scope, receive, send)
            return
        extra = [(name.encode(), value.encode()) for name, value in limits]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CorsExceptAdmin:
    """Pure ASGI: CORS (``ALLOWED_ORIGINS``) for every path but ``/admin`` and below, which get no CORS
    headers and no preflight answers, so no allowed origin can ever drive or read an admin route."""

    def __init__(self, app: ASGIApp, *, allow_origins: Sequence[str], allow_methods: Sequence[str],
                 allow_headers: Sequence[str], expose_headers: Sequence[str], max_age: int) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=allow_origins, allow_methods=allow_methods,
                                   allow_headers=allow_headers, expose_headers=expose_headers, max_age=max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/admin" or path.startswith("/admin/"):
            await self.app(scope, receive, send)
        else:
            await self.cors(scope, receive, send)


class Access:
    """The access component: key checks per guard, the client keys and rate limit of ``/v1/*``, CORS."""

    def __init__(self, settings: Settings, *, limiter: RateLimiter | None) -> None:
        self.settings = settings
        self.control = AccessControl(settings)
        self.limiter = limiter
        keys = ClientKeys(settings.client_api_keys, settings.client_api_keys_file)
        self.client_keys = keys if keys.enabled else None

    def guard(self, app: ASGIApp, guard: Guard, *, locked: ASGIApp | None = None,
              params: frozenset[str] | None = None) -> ASGIApp:
        """``app`` inside the check ``guard`` asks for; an admin route takes only the ``params`` it declares
        (none when it declares none)."""
        if guard is Guard.OPEN:
            return app
        if guard is Guard.CLIENT:
            if self.client_keys is None and self.limiter is None:
                return app  # nothing to check: the hot path stays as it is
            return ClientChecked(app, self.client_keys, self.limiter)
        if guard is Guard.ADMIN:
            return Checked(app, guard, self.control, params=params or frozenset())
        return Checked(app, guard, self.control, locked if guard is Guard.MONITOR_PAGE else None)

    def contribution(self) -> Contribution:
        middleware = []
        if self.settings.allowed_origins:
            middleware.append(Middleware(CorsExceptAdmin, allow_origins=list(self.settings.allowed_origins),
                                         allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=["*"],
                                         expose_headers=EXPOSED_HEADERS, max_age=600))
        return Contribution(middleware=middleware)

    async def start(self) -> None:
        if self.client_keys is not None:
            self.client_keys.load()  # CLIENT_API_KEYS_FILE: I/O, so here
        if self.control.admin_key is None:
            key = admin_key.resolve(self.settings)  # reads or writes DATA_DIR/admin_api_key: I/O, so here
            self.control.admin_key, self.control.admin_key_source = key.value, key.source

    async def stop(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()
