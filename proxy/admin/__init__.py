"""The operator's surface: admin routes, the dashboard, access control, rate limits and CORS.

Middleware, outermost first (all inside the request-context middleware): CORS (only with
ALLOWED_ORIGINS), access control for ``/admin/*``, ``/metrics*`` and ``/dashboard*``, the recent-requests
list the dashboard shows, and the rate limit of ``/v1/*`` (only with RATE_LIMIT_PER_MINUTE).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from proxy.access.auth import AccessControl, AccessControlMiddleware
from proxy.access.ratelimit import MemoryCounter, RateLimiter, RateLimitMiddleware, RedisCounter
from proxy.admin.dashboard import DashboardPage, DashboardRoutes
from proxy.admin.recent import RecentRequests
from proxy.admin.routes import AdminRoutes
from proxy.settings import Settings

if TYPE_CHECKING:
    from proxy.app import Services

logger = logging.getLogger("cachegate.admin")

#: response headers a browser client may read across origins
EXPOSED_HEADERS = ["x-cache", "x-cache-tier", "x-cache-key", "x-cache-similarity", "age", "x-request-id",
                   "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]


class OperatorSurface:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.access = AccessControl(settings)
        self.page = DashboardPage()
        self.recent = RecentRequests()
        self.limiter: RateLimiter | None = None

    def routes(self, services: Services) -> list[BaseRoute]:
        return [*AdminRoutes(self, services).routes(),
                *DashboardRoutes(self, services, self.page, self.access).routes()]

    def middleware(self, services: Services) -> list[Middleware]:
        settings = self.settings
        stack: list[Middleware] = []
        if settings.allowed_origins:
            stack.append(Middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins),
                                    allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=["*"],
                                    expose_headers=EXPOSED_HEADERS, max_age=600))
        stack.append(Middleware(AccessControlMiddleware, access=self.access,
                                locked_page=self.page.locked))
        services.request_listeners.append(self.recent.note)  # told by the request middleware, no layer of its own
        if settings.rate_limit_per_minute > 0:
            counter = (RedisCounter(settings.redis_url, timeout=settings.redis_timeout) if settings.redis_url
                       else MemoryCounter())
            self.limiter = RateLimiter(settings.rate_limit_per_minute, counter, prefix=settings.cache_key_prefix,
                                       failopen=services.failopen)
            stack.append(Middleware(RateLimitMiddleware, limiter=self.limiter))
        return stack

    async def start(self, services: Services) -> None:
        self.started_at = time.time()
        if self.settings.admin_api_key is None:
            logger.warning("ADMIN_API_KEY is not set: /admin/* answer only clients on loopback (127.0.0.1, ::1) "
                           "that connect directly; set ADMIN_API_KEY to use them from elsewhere")
        if self.settings.monitor_api_key is None and self.settings.host not in {"127.0.0.1", "::1", "localhost"}:
            logger.info("MONITOR_API_KEY is not set: /metrics* and /dashboard are open to every client")

    async def stop(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()
