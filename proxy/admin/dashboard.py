"""``GET /dashboard``: one self-contained HTML page (no CDN, charts drawn as inline SVG by its own script).

Where the page comes from: the canonical file is ``dashboard.html`` at the top of the repository; an
identical copy ships as package data (``proxy/static/dashboard.html``) so an installed proxy finds it too.
A unit test fails when the two differ (``cp dashboard.html proxy/static/dashboard.html`` fixes it). The
loader looks in the package data first, then in the checkout.

The page is sent with a Content-Security-Policy that allows only itself: its inline script and style by
their SHA-256 hashes, requests to this origin only, nothing from anywhere else.

With ``MONITOR_API_KEY`` set, ``/dashboard`` without credentials answers 401 *with the page*, which shows
a key prompt (the page holds code only, never data). ``POST /dashboard/session`` checks the key and sets
a session cookie (HttpOnly, SameSite=Strict, an expiring HMAC, never the key), so the key is asked once
per browser session and the export links work as plain downloads.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from proxy.access.auth import SESSION_COOKIE, SESSION_SECONDS, AccessControl, key_matches, make_session, presented_key
from proxy.admin.recent import RecentRequests
from proxy.component import Guard, RouteSpec, route
from proxy.errors import UnauthorizedError
from proxy.http.responses import error_response
from proxy.settings import Settings

PAGE = "dashboard.html"
CHECKOUT_PAGE = Path(__file__).resolve().parents[2] / PAGE
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def page_sources() -> list[Path | Any]:
    """Where the page may be, in the order tried: package data, then the checkout."""
    return [resources.files("proxy").joinpath("static", PAGE), CHECKOUT_PAGE]


def load_page() -> bytes:
    for source in page_sources():
        if source.is_file():
            data: bytes = source.read_bytes()
            return data
    raise FileNotFoundError(f"{PAGE} is neither in the package data (proxy/static) nor at {CHECKOUT_PAGE}")


def content_security_policy(html: bytes) -> str:
    """Only this page: its own inline script and style (by hash) and requests to its own origin."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(html.decode("utf-8")):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    return "; ".join([
        "default-src 'none'",
        "script-src " + (" ".join(hashes["script"]) or "'none'"),
        "style-src " + (" ".join(hashes["style"]) or "'none'"),
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class DashboardPage:
    """The page and its headers, read once."""

    def __init__(self) -> None:
        self._body: bytes | None = None
        self._csp = ""

    def body(self) -> tuple[bytes, str]:
        if self._body is None:
            self._body = load_page()
            self._csp = content_security_policy(self._body)
        return self._body, self._csp

    def response(self, status: int = 200) -> Response:
        body, csp = self.body()
        headers = {"content-security-policy": csp, "x-content-type-options": "nosniff",
                   "referrer-policy": "no-referrer", "x-frame-options": "DENY", "cache-control": "no-store"}
        return Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=headers)

    async def locked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The 401 answer to ``/dashboard`` without the monitor key: the page, which asks for it."""
        await self.response(401)(scope, receive, send)


class DashboardRoutes:
    def __init__(self, settings: Settings, *, page: DashboardPage, access: AccessControl, recent: RecentRequests,
                 exact_backend: str, semantic_enabled: bool, started_at: Callable[[], float]) -> None:
        self.settings = settings
        self.page = page
        self.access = access
        self.recent = recent
        self.exact_backend = exact_backend
        self.semantic_enabled = semantic_enabled
        self.started_at = started_at

    def routes(self) -> list[RouteSpec]:
        return [
            route("/dashboard", self.dashboard, guard=Guard.MONITOR_PAGE, locked=self.page.locked),
            route("/dashboard/session", self.login, "POST", guard=Guard.OPEN),  # it checks the key it is given
            route("/dashboard/session", self.logout, "DELETE", guard=Guard.OPEN),
            route("/dashboard/data", self.data, guard=Guard.MONITOR),
        ]

    async def dashboard(self, request: Request) -> Response:
        return self.page.response()

    async def login(self, request: Request) -> Response:
        key = self.access.monitor_key
        if key is None:
            return Response(status_code=204)
        if not key_matches(presented_key(request.headers), key):
            return error_response(UnauthorizedError("That is not the monitor key."))  # type: ignore[return-value]
        response = Response(status_code=204, headers={"cache-control": "no-store"})
        response.set_cookie(SESSION_COOKIE, make_session(key), max_age=None, path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        response.headers["x-session-expires-in"] = str(SESSION_SECONDS)
        return response

    async def logout(self, request: Request) -> Response:
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def data(self, request: Request) -> JSONResponse:
        """What the dashboard needs besides /health and /metrics: uptime, recent requests, the set-up."""
        settings = self.settings
        started_at = self.started_at()
        return JSONResponse({
            "uptime_seconds": round(time.time() - started_at, 1),
            "started_at": started_at,
            "recent_requests": self.recent.snapshot(),
            "exact_backend": self.exact_backend,
            "semantic_enabled": self.semantic_enabled,
            "semantic_mode": settings.semantic_mode,
            "admin_key_required": True,  # ADMIN_API_KEY or the generated one: admin routes always need a key
            "monitor_key_required": settings.monitor_api_key is not None,
            "rate_limit_per_minute": settings.rate_limit_per_minute,
            "timestamp": time.time(),
        }, headers={"cache-control": "no-store"})
