"""A receiver for the alert webhook (ALERT_WEBHOOK_URL): a real HTTP server on a free port, in a thread."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.servers import ServerThread


class Receiver(ServerThread):
    """Records every JSON body POSTed to /hook; answers 503 to the first ``fail`` of them."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = 0
        self.calls = 0
        super().__init__(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> JSONResponse:
        self.calls += 1
        if self.fail > 0:
            self.fail -= 1
            return JSONResponse({"error": "try later"}, status_code=503)
        self.bodies.append(await request.json())
        return JSONResponse({"ok": True})
