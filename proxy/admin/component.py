"""The operator's surface: admin routes, the dashboard and its recent-requests list.

Every admin route is ``Guard.ADMIN``; the dashboard's are ``Guard.MONITOR`` (the page itself
``Guard.MONITOR_PAGE``: refused with the page, which asks for the key). The recent-requests list is a
listener the request middleware tells about every finished request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.access.auth import AccessControl
from proxy.admin.dashboard import DashboardPage, DashboardRoutes
from proxy.admin.recent import RecentRequests
from proxy.admin.routes import AdminRoutes
from proxy.admin.warm import Warmer
from proxy.cache.exact import ExactCache
from proxy.component import Contribution
from proxy.contracts import SemanticAdmin
from proxy.health import Health
from proxy.settings import Settings

logger = logging.getLogger("cachegate.admin")


class OperatorSurface:
    def __init__(self, settings: Settings, *, access: AccessControl, exact: ExactCache,
                 semantic: SemanticAdmin | None, warmer: Warmer, health: Health,
                 metrics: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.page = DashboardPage()
        self.recent = RecentRequests()
        self.admin = AdminRoutes(settings, access=access, exact=exact, semantic=semantic, warmer=warmer,
                                 health=health, metrics=metrics, started_at=self._started_at)
        self.dashboard = DashboardRoutes(settings, page=self.page, access=access, recent=self.recent,
                                         exact_backend=exact.component, semantic_enabled=semantic is not None,
                                         started_at=self._started_at)

    def _started_at(self) -> float:
        return self.started_at

    def contribution(self) -> Contribution:
        return Contribution(routes=[*self.admin.routes(), *self.dashboard.routes()], listeners=[self.recent.note])

    async def start(self) -> None:
        self.started_at = time.time()
        if self.settings.monitor_api_key is None and self.settings.host not in {"127.0.0.1", "::1", "localhost"}:
            logger.info("MONITOR_API_KEY is not set: /metrics* and /dashboard are open to every client")

    async def stop(self) -> None:
        return None
