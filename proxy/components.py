"""The shape every optional part of the app has, so ``create_app`` wires them all the same way.

A component is built from the settings without I/O, may contribute routes and ASGI middleware, and is
started and stopped by the app's lifespan (start in order, stop in reverse).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from proxy.app import Services

#: name → coroutine function that raises when that dependency is down (used by /health)
HealthCheck = Callable[[], Awaitable[Any]]


class Component(Protocol):
    def routes(self, services: Services) -> list[BaseRoute]: ...

    def middleware(self, services: Services) -> list[Middleware]: ...

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...
