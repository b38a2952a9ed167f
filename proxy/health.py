"""``GET /health``: is every configured dependency answering? Checked concurrently, each with a timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

CHECK_TIMEOUT = 3.0


async def _check(name: str, ping: Any) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(), CHECK_TIMEOUT)
    except Exception as exc:
        return name, {"status": "down", "error": str(exc) or type(exc).__name__}
    return name, {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def health_endpoint(request: Request) -> JSONResponse:
    services = request.app.state.services
    checks: dict[str, dict[str, Any]] = {name: {"status": "embedded", "backend": kind}
                                         for name, kind in services.embedded.items()}
    results = await asyncio.gather(*[_check(name, ping) for name, ping in services.health_checks.items()])
    checks.update(results)
    for name, state in services.failopen.components.items():
        checks.setdefault(name, {})["failures"] = state.failures
        if state.last_error:
            checks[name]["last_error"] = state.last_error
    healthy = all(check.get("status") != "down" for check in checks.values())
    return JSONResponse({"status": "healthy" if healthy else "unhealthy", "services": checks,
                         "timestamp": time.time()}, status_code=200 if healthy else 503)
