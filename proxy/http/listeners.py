"""``METRICS_BIND_ADDRESS``: the monitoring routes on a listener of their own, and not on the public one.

With it set, ``cachegate serve`` runs two uvicorn servers in one process around the one app: the public
listener (``HOST:PORT``) answers everything but the monitoring routes, the second (e.g. an internal
interface) answers only them. Which routes are monitoring (:data:`MONITORING`): ``/metrics*``,
``/kv-cache-metrics``, ``/health*`` and ``/dashboard*`` (the page and its data; the page reads the
metrics from its own origin, so it works there as it does on the public port). A route asked on the wrong
listener is a 404 in OpenAI's error shape, as an unknown route is. Guards still apply on both listeners:
``MONITOR_API_KEY`` protects the monitoring routes wherever they are served.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.errors import NotFoundError
from proxy.http.responses import error_response

MONITORING = ("/metrics", "/kv-cache-metrics", "/health", "/dashboard")


def is_monitoring(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in MONITORING)


class Listener:
    """The app as one listener serves it: only the monitoring routes (``monitoring=True``) or all but them."""

    def __init__(self, app: ASGIApp, *, monitoring: bool) -> None:
        self.app = app
        self.monitoring = monitoring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and is_monitoring(scope["path"]) != self.monitoring:
            where = "the metrics listener (METRICS_BIND_ADDRESS)" if not self.monitoring else "the public listener"
            error = NotFoundError(f"No route for {scope.get('method', 'GET')} {scope['path']} here: it is served on "
                                  f"{where}.", code="unknown_url")
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)
