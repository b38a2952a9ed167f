"""``GET /metrics/semantic``: the semantic tier's own counters, for the dashboard's *semantic* panel.

``/metrics`` counts what every request got (exact hit, semantic hit, miss); this answers what only the
tier knows: lookups, hits, shadow hits (shadow mode: what would have been served), misses, refusals by
guard (a candidate above the threshold that a guard or feedback turned down), stores, errors, and how many
entries the store holds. Counting the entries asks the store, bounded by :data:`COUNT_TIMEOUT`; when it
cannot answer the figure is ``null`` and the rest is still served (fail open).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.component import Guard, Panel, RouteSpec, route

ROUTE = "/metrics/semantic"
PANEL = Panel("semantic", "Semantic tier", "semantic", ROUTE, order=65)
COUNT_TIMEOUT = 2.0
#: the counters reported as they are (zero when never counted)
COUNTERS = ("lookups", "hits", "shadow_hits", "misses", "skipped", "errors", "stored", "store_errors",
            "expired_removed", "feedback_right", "feedback_wrong", "verifier_errors")
REFUSED = "refused_"


class SemanticStats:
    def __init__(self, stats: Counter[str], *, count: Callable[[], Awaitable[int]], mode: str, threshold: float,
                 ready: Callable[[], bool], verifier: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.stats = stats  # the tier's counters, shared with its parts
        self.count = count
        self.mode = mode
        self.threshold = threshold
        self.ready = ready
        self.verifier = verifier  # the verifier's name, threshold and per-day scores (None: it is off)

    def route(self) -> RouteSpec:
        return route(ROUTE, self.endpoint, guard=Guard.MONITOR)

    def counters(self) -> dict[str, Any]:
        """Every counter, and the refusals in total and by guard (largest first)."""
        refused = {name.removeprefix(REFUSED): value for name, value in self.stats.items()
                   if name.startswith(REFUSED) and value}
        out: dict[str, Any] = {name: self.stats[name] for name in COUNTERS}
        out["refusals"] = sum(refused.values())
        out["refused"] = dict(sorted(refused.items(), key=lambda item: (-item[1], item[0])))
        return out

    async def entries(self) -> int | None:
        try:
            return await asyncio.wait_for(self.count(), COUNT_TIMEOUT)
        except Exception:  # the store is down or slow: health says so; the counters are still worth showing
            return None

    async def endpoint(self, request: Request) -> JSONResponse:
        return JSONResponse({"mode": self.mode, "ready": self.ready(), "threshold": self.threshold,
                             "entries": await self.entries(), **self.counters(), "verifier": self.verifier(),
                             "timestamp": time.time()},
                            headers={"cache-control": "no-store"})
