"""The operator's surface: admin routes, the dashboard, access control, rate limits and CORS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from ..settings import Settings

if TYPE_CHECKING:
    from ..app import Services


class OperatorSurface:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def routes(self, services: Services) -> list[BaseRoute]:
        return []

    def middleware(self, services: Services) -> list[Middleware]:
        return []

    async def start(self, services: Services) -> None:
        return None

    async def stop(self) -> None:
        return None
