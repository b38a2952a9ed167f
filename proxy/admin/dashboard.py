"""``GET /dashboard``: one self-contained HTML page (no CDN, charts drawn as inline SVG by its own script).

The page is a shell (header, health, refresh, the disconnected and locked states, chart helpers) that
draws panels. Which panels, in which order, with which title and from which JSON is data: the
:class:`~proxy.component.Panel` list every component contributes. The composition root collects them and
hands them to :class:`DashboardRoutes`, which lists them at ``GET /dashboard/panels``; the page draws each
with the renderer of its ``kind`` from the JSON at its ``source``. To add a panel, contribute a ``Panel`` of a
kind the page draws (``proxy.component.PANEL_KINDS``; ``link`` for a page of one's own).

Where the page comes from: one file, ``dashboard.html`` at the top of the repository. The package data
``proxy/static/dashboard.html`` is a relative symlink to it, so a checkout (and an editable install) reads
the file itself, and a wheel (``pip install .``, the Dockerfile) ships its content: the build follows the
link. There is no second copy to keep in step.

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
from collections.abc import Sequence
from dataclasses import asdict
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from proxy.access.auth import SESSION_COOKIE, SESSION_SECONDS, AccessControl, key_matches, make_session, presented_key
from proxy.component import Contribution, Guard, Panel, route
from proxy.errors import UnauthorizedError
from proxy.http.responses import error_response

PAGE = "dashboard.html"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def page_file(name: str = PAGE) -> Traversable:
    """A page, as package data (the dashboard in a checkout: the symlink to the top-level ``dashboard.html``)."""
    return resources.files("proxy").joinpath("static", name)


def load_page(name: str = PAGE) -> bytes:
    data = page_file(name).read_bytes()
    if not data.startswith(b"<!DOCTYPE html>"):  # a checkout made without symlinks holds the link's target path
        raise FileNotFoundError(f"proxy/static/{name} is not the page but {data[:80]!r}: check the repository out "
                                f"with symlinks (git config core.symlinks true)")
    return data


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
    """The page and its headers, read once. ``name`` is another self-contained page of ``proxy/static`` served
    the same way (the probe's ``probe.html``)."""

    def __init__(self, name: str = PAGE) -> None:
        self.name = name
        self._body: bytes | None = None
        self._csp = ""

    def body(self) -> tuple[bytes, str]:
        if self._body is None:
            self._body = load_page(self.name)
            self._csp = content_security_policy(self._body)
        return self._body, self._csp

    def response(self, status: int = 200) -> Response:
        body, csp = self.body()
        headers = {"content-security-policy": csp, "x-content-type-options": "nosniff",
                   "referrer-policy": "no-referrer", "x-frame-options": "DENY", "cache-control": "no-store"}
        return Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=headers)

    async def locked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The 401 answer to the page without the monitor key: the page, which asks for it."""
        await self.response(401)(scope, receive, send)


class DashboardRoutes:
    """The dashboard as a component: the page, its session login, and the panels it draws.

    Built last by the composition root, which gives it every other component's panels (and it adds none).
    """

    def __init__(self, *, page: DashboardPage, access: AccessControl, panels: Sequence[Panel]) -> None:
        self.page = page
        self.access = access
        self.panels = tuple(panels)
        self.started_at = time.time()

    def contribution(self) -> Contribution:
        return Contribution(routes=[
            route("/dashboard", self.dashboard, guard=Guard.MONITOR_PAGE, locked=self.page.locked),
            route("/dashboard/session", self.login, "POST", guard=Guard.OPEN),  # it checks the key it is given
            route("/dashboard/session", self.logout, "DELETE", guard=Guard.OPEN),
            route("/dashboard/panels", self.panel_list, guard=Guard.MONITOR),
        ])

    async def start(self) -> None:
        self.started_at = time.time()

    async def stop(self) -> None:
        return None

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

    async def panel_list(self, request: Request) -> JSONResponse:
        """The panels to draw, in order, and the process's uptime for the page's header."""
        return JSONResponse({"panels": [asdict(panel) for panel in self.panels],
                             "uptime_seconds": round(time.time() - self.started_at, 1),
                             "timestamp": time.time()}, headers={"cache-control": "no-store"})
