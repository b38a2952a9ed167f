"""``GET /probe``: the probe monitor's page, one self-contained HTML file shipped as package data
(``proxy/static/probe.html``; no CDN, charts drawn as inline SVG by its own script).

It is served the way ``/dashboard`` is: a Content-Security-Policy that allows only the page's own inline
script and style, by their hashes (:func:`proxy.admin.dashboard.content_security_policy`), and requests to
this origin. Without the monitor key it answers 401 *with the page*, which asks for the key and unlocks
the session through ``POST /dashboard/session`` (one session for both pages).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from proxy.admin.dashboard import content_security_policy
from proxy.component import Guard, RouteSpec, route

PAGE = "probe.html"
HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
           "cache-control": "no-store"}


def load_page() -> bytes:
    data: bytes = resources.files("proxy").joinpath("static", PAGE).read_bytes()
    return data


class ProbePage:
    """The page and its policy, read once."""

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
        return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"content-security-policy": csp, **HEADERS})

    async def page(self, request: Request) -> Response:
        return self.response()

    async def locked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The 401 answer without the monitor key: the page, which asks for it."""
        await self.response(401)(scope, receive, send)

    def routes(self) -> list[RouteSpec]:
        return [route("/probe", self.page, guard=Guard.MONITOR_PAGE, locked=self.locked)]
