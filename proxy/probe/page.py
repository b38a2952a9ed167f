"""``GET /probe``: the probe monitor's page, one self-contained HTML file shipped as package data
(``proxy/static/probe.html``; no CDN, charts drawn as inline SVG by its own script).

It is served exactly as ``/dashboard`` is (:class:`proxy.admin.dashboard.DashboardPage`): a
Content-Security-Policy that allows only the page's own inline script and style, by their hashes, and
requests to this origin. Without the monitor key it answers 401 *with the page*, which asks for the key
and unlocks the session through ``POST /dashboard/session`` (one session for both pages).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.admin.dashboard import DashboardPage
from proxy.component import Guard, RouteSpec, route

PAGE = "probe.html"


class ProbePage:
    def __init__(self) -> None:
        self.html = DashboardPage(PAGE)

    async def page(self, request: Request) -> Response:
        return self.html.response()

    def routes(self) -> list[RouteSpec]:
        return [route("/probe", self.page, guard=Guard.MONITOR_PAGE, locked=self.html.locked)]
