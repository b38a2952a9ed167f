"""Monitoring: metrics, the savings ledger, usage history, the request log and /health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from ..contracts import NullObserver, Observer
from ..health import health_endpoint
from ..settings import Settings

if TYPE_CHECKING:
    from ..app import Services


class Monitoring:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.observer: Observer = NullObserver()

    def routes(self, services: Services) -> list[BaseRoute]:
        return [Route("/health", health_endpoint, methods=["GET"])]

    def middleware(self, services: Services) -> list[Middleware]:
        return []

    async def start(self, services: Services) -> None:
        return None

    async def stop(self) -> None:
        return None
