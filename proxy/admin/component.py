"""The operator's surface: admin routes, warm, the recent-requests list and the dashboard's view of the set-up.

Every admin route is ``Guard.ADMIN``; ``/dashboard/data`` (recent requests and the set-up, which the
dashboard's *recent* and *admin* panels draw) is ``Guard.MONITOR``. The recent-requests list is a listener
the request middleware tells about every finished request. The dashboard page itself is a component of its
own (:class:`~proxy.admin.dashboard.DashboardRoutes`), built last with every component's panels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.access.auth import AccessControl
from proxy.admin.recent import RecentRequests
from proxy.admin.routes import AdminRoutes
from proxy.admin.warm import Warmer
from proxy.cache.exact import ExactCache
from proxy.component import Contribution, Guard, Panel, route
from proxy.contracts import SemanticAdmin
from proxy.health import Health
from proxy.settings import Settings

logger = logging.getLogger("cachegate.admin")

DATA = "/dashboard/data"
PANELS = (
    Panel("recent", "Recent requests", "recent", DATA, order=80),
    Panel("admin", "Admin", "admin", DATA, order=90),
)


class OperatorSurface:
    def __init__(self, settings: Settings, *, access: AccessControl, exact: ExactCache,
                 semantic: SemanticAdmin | None, warmer: Warmer, health: Health,
                 metrics: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.recent = RecentRequests()
        self.exact_backend = exact.component
        self.semantic_enabled = semantic is not None
        self.admin = AdminRoutes(settings, access=access, exact=exact, semantic=semantic, warmer=warmer,
                                 health=health, metrics=metrics, started_at=self._started_at)

    def _started_at(self) -> float:
        return self.started_at

    def contribution(self) -> Contribution:
        return Contribution(routes=[*self.admin.routes(), route(DATA, self.data, guard=Guard.MONITOR)],
                            panels=PANELS, listeners=[self.recent.note])

    async def start(self) -> None:
        self.started_at = time.time()
        if self.settings.monitor_api_key is None and self.settings.host not in {"127.0.0.1", "::1", "localhost"}:
            logger.info("MONITOR_API_KEY is not set: /metrics* and /dashboard are open to every client")

    async def stop(self) -> None:
        return None

    async def data(self, request: Request) -> JSONResponse:
        """What the dashboard's operator panels draw: uptime, recent requests, the set-up."""
        settings = self.settings
        return JSONResponse({
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "started_at": self.started_at,
            "recent_requests": self.recent.snapshot(),
            "exact_backend": self.exact_backend,
            "semantic_enabled": self.semantic_enabled,
            "semantic_mode": settings.semantic_mode,
            "admin_key_required": True,  # ADMIN_API_KEY or the generated one: admin routes always need a key
            "monitor_key_required": settings.monitor_api_key is not None,
            "rate_limit_per_minute": settings.rate_limit_per_minute,
            "timestamp": time.time(),
        }, headers={"cache-control": "no-store"})
