"""The monitoring component: serves ``/metrics*`` and keeps what :class:`Telemetry` records flowing.

It contributes the metrics routes (``Guard.MONITOR``), the dashboard panels drawn from them (:data:`PANELS`)
and its periodic work as jobs for the one job runner: folding waiting events into numbers every 0.1 s
(sooner under load: the observer folds every 256 events), writing the request log every 0.1 s, flushing the
ledger and the usage rows every second, reading cache sizes every :data:`GAUGE_EVERY` seconds and deleting
usage rows past retention hourly. :meth:`Monitoring.stop` flushes everything once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from proxy.cache.stats import Level
from proxy.component import Contribution, Job, Panel
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.routes import MonitoringRoutes
from proxy.monitoring.telemetry import Telemetry
from proxy.platform.failopen import FailOpen

logger = logging.getLogger("cachegate.monitoring")

FOLD_EVERY = 0.1  # at low rates; under load the observer folds every MonitoringObserver.FOLD_AT events
# Small batches: the lines are formatted on the loop (~0.4 µs each), so a batch of half a second at 11k
# requests/s held it for 2 ms.
LOG_FLUSH_EVERY = 0.1
FLUSH_EVERY = 1.0
GAUGE_EVERY = 15.0
PURGE_EVERY = 3600.0

METRICS = "/metrics"
#: The dashboard's monitoring panels. The usage history's defaults are the last 24 hours, so the hourly
#: chart's source needs no times of its own.
PANELS = (
    Panel("totals", "Totals", "totals", METRICS, order=10),
    Panel("outcomes", "Cache outcomes", "outcomes", METRICS, order=20),
    Panel("levels", "Cache levels", "levels", METRICS, order=25, note="memory, disk, Redis, semantic"),
    Panel("timeline", "Requests and hit rate over time", "timeline", "/metrics/usage?bucket=hour", order=30,
          note="last 24 h"),
    Panel("tokens", "Tokens saved vs used", "tokens", METRICS, order=40),
    Panel("latency", "Latency", "latency", METRICS, order=50, note="hits vs misses"),
    Panel("streaming", "Streaming", "streaming", METRICS, order=60),
    Panel("models", "By model", "models", METRICS, order=70, note="click a column to sort"),
    Panel("exports", "Export", "exports", METRICS, order=85),
    Panel("pricing", "Pricing used for the cost figures (USD per 1M tokens)", "pricing", METRICS, order=100),
)

#: every cache level's gauges and counters (the exact tier's levels, then the semantic tier's)
LevelSource = Callable[[], Awaitable[list[Level]]]
#: How long reading the levels may take (a server level's count is a SCAN, cached between reads).
LEVELS_TIMEOUT = 10.0


class Monitoring:
    def __init__(self, telemetry: Telemetry, *, levels: Sequence[LevelSource], failopen: FailOpen) -> None:
        self.telemetry = telemetry
        self.settings = telemetry.settings
        self.levels = tuple(levels)
        self.failopen = failopen

    def contribution(self) -> Contribution:
        t = self.telemetry
        jobs = [Job("monitoring-fold", FOLD_EVERY, self._fold), Job("ledger-flush", FLUSH_EVERY, self._flush),
                Job("cache-gauges", GAUGE_EVERY, self.update_gauges),
                Job("usage-retention", PURGE_EVERY, t.usage.purge)]
        if t.request_log is not None:
            jobs.append(Job("request-log", LOG_FLUSH_EVERY, self._flush_log))
        routes = MonitoringRoutes(t, refresh=self.refresh, current=self.current).routes()
        return Contribution(routes=routes, jobs=jobs, panels=PANELS)

    async def start(self) -> None:
        t = self.telemetry
        t.observer.pricing = Pricing.load(self.settings.pricing_file)  # a bad file stops start-up
        try:
            await t.database.open()
            await t.usage.purge()
        except Exception as exc:
            # rows wait in the bounded buffer, and every flush tries again: writing resumes once it answers
            logger.error("monitoring database %s unavailable (usage history%s kept in memory until it answers): %s",
                         t.database.describe(), "" if t.ledger.store.name == "redis" else " and savings ledger", exc)
        await t.ledger.start()
        if t.request_log is not None:
            try:
                await t.request_log.open()
            except OSError as exc:
                logger.error("request log %s cannot be opened, it is off: %s", t.request_log.path, exc)
                t.request_log = t.observer.request_log = None
        await self.update_gauges()

    async def stop(self) -> None:
        t = self.telemetry
        await self.flush()
        if t.request_log is not None:
            await t.request_log.close()
        await t.database.close()

    # -- background work --------------------------------------------------------------------------

    async def _fold(self) -> None:
        self.telemetry.observer.fold()

    async def _flush(self) -> None:
        await self.telemetry.ledger.flush()
        await self.telemetry.usage.flush()

    async def _flush_log(self) -> None:
        if self.telemetry.request_log is not None:
            await self.telemetry.request_log.flush()

    async def flush(self) -> None:
        """Write everything pending: ledger deltas, usage rows and request-log lines."""
        self.telemetry.observer.fold()
        await self._flush()
        await self._flush_log()

    async def update_gauges(self) -> None:
        """Every cache level's gauges (entries, bytes, bound), read now; a source that fails keeps its last."""
        metrics = self.telemetry.metrics
        known = {level.name: level for level in metrics.levels}
        levels: list[Level] = []
        for source in self.levels:
            try:
                levels += await asyncio.wait_for(source(), LEVELS_TIMEOUT)
            except Exception as exc:
                logger.debug("cache levels unavailable: %s", exc)
                continue
        for level in levels:
            known.pop(level.name, None)
        metrics.levels = [*levels, *known.values()]

    # -- reading ----------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Bring the shared totals (re-read at most once a second) and the cache sizes up to date."""
        self.telemetry.observer.fold()
        await self.telemetry.ledger.refresh()
        await self.update_gauges()

    def cache_usage(self) -> dict[str, Any]:
        """Each tier's entries and bytes (the exact tier: its fullest level), and every level in full."""
        levels = self.telemetry.metrics.levels
        out: dict[str, Any] = {}
        exact = [level for level in levels if level.name != "semantic"]
        if exact:
            out["exact"] = {"entries": max(level.report.entries or 0 for level in exact),
                            "bytes": max(level.report.bytes or 0 for level in exact)}
        for level in levels:
            if level.name == "semantic":
                out["semantic"] = {"entries": level.report.entries or 0, "bytes": level.report.bytes or 0}
        out["levels"] = {level.name: level.snapshot() for level in levels}
        return out

    def snapshot(self) -> dict[str, Any]:
        components = {name: state.snapshot() for name, state in self.failopen.components.items()}
        snapshot = self.telemetry.report.json(cache_usage=self.cache_usage(), components=components,
                                              ledger_backend=self.telemetry.ledger.store.name)
        snapshot["history"] = self.telemetry.history_state()
        return snapshot

    async def current(self) -> dict[str, Any]:
        """What ``GET /metrics`` answers, brought up to date (``/admin/stats`` shows it too)."""
        await self.refresh()
        return self.snapshot()
