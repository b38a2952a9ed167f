"""``/health``: is every configured dependency answering? The checks are the ones components contribute.

- ``/health``: 200 ``healthy`` when every dependency (Redis, Qdrant, the embedding service) answers, 503
  ``unhealthy`` naming what is down; parts that run in-process report ``embedded``. What no request needs
  (the history's database, ``history``) is ``degraded`` when it does not answer, and keeps the answer 200:
  requests are served all the same, so a load balancer must not take the replica out. Each check runs
  concurrently, bounded by :data:`CHECK_TIMEOUT`; what the fail-open book-keeping saw (failures, the last
  error) is added. Error texts are scrubbed (:func:`~proxy.redaction.scrub`): they often name the URL that
  failed, with whatever credentials it holds, and these routes are open to everyone.
- ``/health/live``: 200 while the process serves (liveness: it checks nothing else).
- ``/health/ready``: readiness for a load balancer: 200 ``ready``, and 503 ``draining`` from the moment the
  process was told to stop (SIGTERM: :meth:`Health.drain`), so the balancer sends new requests elsewhere
  while the ones in flight finish. It never asks Redis, Qdrant or the embedding service: they fail open,
  and tying readiness to a shared dependency would take every replica out at once.
- ``/health/detailed``: the above plus the traffic and error rates of the metrics window, and the warnings
  that hold now (``warnings``: :mod:`proxy.monitoring.alerts`; they never change the status code).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.component import Contribution, Guard, HealthCheck, route
from proxy.platform.failopen import FailOpen
from proxy.redaction import scrub

CHECK_TIMEOUT = 3.0


async def _ping(check: HealthCheck, timeout: float) -> tuple[str, dict[str, Any]]:
    assert check.ping is not None
    started = time.perf_counter()
    failed = "down" if check.critical else "degraded"
    try:
        await asyncio.wait_for(check.ping(), timeout)
    except TimeoutError:
        return check.name, {"status": failed, "error": f"no answer within {timeout:g}s"}
    except Exception as exc:
        return check.name, {"status": failed, "error": scrub(str(exc) or type(exc).__name__)}
    return check.name, {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


class Health:
    def __init__(self, checks: Sequence[HealthCheck], failopen: FailOpen, *,
                 traffic: Callable[[], dict[str, Any]],
                 warnings: Callable[[], list[dict[str, Any]]] = list) -> None:
        self.checks = tuple(checks)
        self.failopen = failopen
        self.traffic = traffic  # the window's rates, for /health/detailed
        self.warnings = warnings  # the warnings that hold now
        self.draining_since: float | None = None

    def drain(self) -> None:
        """The process is stopping: readiness answers 503 from now on."""
        if self.draining_since is None:
            self.draining_since = time.time()

    async def check(self, timeout: float = CHECK_TIMEOUT) -> tuple[bool, dict[str, dict[str, Any]]]:
        """(all up?, name → {status, latency_ms | error, failures, last_error}) for every dependency."""
        checks: dict[str, dict[str, Any]] = {c.name: {"status": "embedded", "backend": c.embedded}
                                             for c in self.checks if c.ping is None}
        checks.update(await asyncio.gather(*[_ping(c, timeout) for c in self.checks if c.ping is not None]))
        for c in self.checks:
            if c.details is not None:
                checks[c.name].update(scrub(c.details()))
        for name, state in self.failopen.components.items():
            checks.setdefault(name, {"status": "degraded" if state.degraded else "up"})["failures"] = state.failures
            if state.last_error:
                checks[name]["last_error"] = scrub(state.last_error)
        healthy = all(check.get("status") != "down" for check in checks.values())
        return healthy, checks

    def contribution(self) -> Contribution:
        return Contribution(routes=[
            route("/health", self.health, guard=Guard.OPEN),
            route("/health/live", self.live, guard=Guard.OPEN),
            route("/health/ready", self.ready, guard=Guard.OPEN),
            route("/health/detailed", self.detailed, guard=Guard.OPEN),
        ])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def health(self, request: Request) -> JSONResponse:
        healthy, checks = await self.check()
        body: dict[str, Any] = {"status": "healthy" if healthy else "unhealthy", "services": checks,
                                "timestamp": time.time()}
        if not healthy:
            body["down"] = _down(checks)
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def live(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "timestamp": time.time()})

    async def ready(self, request: Request) -> JSONResponse:
        if self.draining_since is not None:
            return JSONResponse({"status": "draining", "since": self.draining_since, "timestamp": time.time()},
                                status_code=503)
        return JSONResponse({"status": "ready", "timestamp": time.time()})

    async def detailed(self, request: Request) -> JSONResponse:
        healthy, checks = await self.check()
        body = self.traffic()
        if not healthy:
            body["status"] = "unhealthy"
            body["down"] = _down(checks)
        body["services"] = checks
        body["warnings"] = self.warnings()
        body["timestamp"] = time.time()
        return JSONResponse(body, status_code=503 if body["status"] == "unhealthy" else 200)


def _down(checks: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(name for name, check in checks.items() if check.get("status") == "down")
