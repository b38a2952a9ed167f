"""``GET /health``: is every configured dependency answering? Checked concurrently, each with a timeout.

- ``/health``: 200 ``healthy`` when every dependency (Redis, Qdrant, the embedding service) answers,
  503 ``unhealthy`` naming what is down; parts that run in-process report ``embedded``.
- ``/health/live``: 200 while the process serves (liveness: it checks nothing else).
- ``/health/detailed`` (see :mod:`proxy.monitoring.routes`): the above plus traffic and error rates.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from proxy.app import Services

CHECK_TIMEOUT = 3.0


async def _check(name: str, ping: Any, timeout: float) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(), timeout)
    except TimeoutError:
        return name, {"status": "down", "error": f"no answer within {timeout:g}s"}
    except Exception as exc:
        return name, {"status": "down", "error": str(exc) or type(exc).__name__}
    return name, {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def check_services(services: Services, timeout: float = CHECK_TIMEOUT) -> tuple[bool, dict[str, Any]]:
    """(all up?, name → {status, latency_ms | error, failures, last_error}) for every dependency."""
    checks: dict[str, dict[str, Any]] = {name: {"status": "embedded", "backend": kind}
                                         for name, kind in services.embedded.items()}
    results = await asyncio.gather(*[_check(name, ping, timeout) for name, ping in services.health_checks.items()])
    checks.update(results)
    for name, state in services.failopen.components.items():
        checks.setdefault(name, {"status": "degraded" if state.degraded else "up"})["failures"] = state.failures
        if state.last_error:
            checks[name]["last_error"] = state.last_error
    healthy = all(check.get("status") != "down" for check in checks.values())
    return healthy, checks


async def health_endpoint(request: Request) -> JSONResponse:
    healthy, checks = await check_services(request.app.state.services)
    body: dict[str, Any] = {"status": "healthy" if healthy else "unhealthy", "services": checks,
                            "timestamp": time.time()}
    if not healthy:
        body["down"] = sorted(name for name, check in checks.items() if check.get("status") == "down")
    return JSONResponse(body, status_code=200 if healthy else 503)


async def live_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive", "timestamp": time.time()})
