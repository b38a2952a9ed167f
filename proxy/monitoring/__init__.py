"""Monitoring: metrics, the savings ledger, usage history, the request log and /health.

:class:`Monitoring` is a component of the app (see :mod:`proxy.components`). Its :attr:`observer` is
handed to every part that reports events; on the request path it only appends to a list. Everything
else runs in one background task started by :meth:`Monitoring.start`: every 0.1 s it folds the waiting
events into numbers, every 0.5 s it writes the request log (aiofiles), every second it flushes the
ledger (Redis or SQLite) and the usage history (SQLite), every :data:`GAUGE_EVERY` seconds it reads
cache sizes, and every hour it deletes usage rows past retention.
:meth:`Monitoring.stop` cancels it and flushes everything once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from proxy.contracts import Observer, Upstream
from proxy.monitoring.ledger import GLOBAL, Ledger, LedgerStore, RedisLedgerStore, SqliteLedgerStore
from proxy.monitoring.observer import MonitoringObserver
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.registry import LedgerCollector, Metrics
from proxy.monitoring.report import Report
from proxy.monitoring.request_log import RequestLog
from proxy.monitoring.routes import MonitoringRoutes
from proxy.monitoring.upstream_debug import LoggingUpstream
from proxy.monitoring.usage import UsageStore
from proxy.platform.sqlite import FILENAME, Database
from proxy.settings import Settings

if TYPE_CHECKING:
    from proxy.app import Services

logger = logging.getLogger("cachegate.monitoring")

FOLD_EVERY = 0.1  # small batches: folding never holds the loop for more than a millisecond or so
LOG_FLUSH_EVERY = 0.5
FLUSH_EVERY = 1.0
GAUGE_EVERY = 15.0
PURGE_EVERY = 3600.0

__all__ = ["Monitoring", "MonitoringObserver"]


class Monitoring:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.db = Database(settings.data_path / FILENAME)
        store: LedgerStore = (RedisLedgerStore(settings.redis_url, prefix=settings.cache_key_prefix)
                              if settings.redis_url else SqliteLedgerStore(self.db))
        self.ledger = Ledger(store, on_error=self._background_error)
        self.usage = UsageStore(self.db, retention_days=settings.usage_retention_days,
                                on_drop=lambda n: self.metrics.dropped.inc(("usage",), n),
                                on_error=self._background_error)
        self.request_log = RequestLog(settings.log_path) if settings.log_path else None
        self.observer_impl = MonitoringObserver(metrics=self.metrics, ledger=self.ledger, pricing=Pricing(),
                                                window_seconds=settings.metrics_window_seconds, usage=self.usage,
                                                request_log=self.request_log)
        self.observer: Observer = self.observer_impl
        self.report = Report(self.observer_impl)
        self.metrics.registry.register(LedgerCollector(self.global_totals))
        self.services: Services | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the component ----------------------------------------------------------------------------

    def routes(self, services: Services) -> list[BaseRoute]:
        return MonitoringRoutes(self).routes()

    def middleware(self, services: Services) -> list[Middleware]:
        return []  # streams are followed through the request middleware's response_started hook

    def upstream(self, upstream: Upstream) -> Upstream:
        """``upstream``, logging every exchange when DEBUG_UPSTREAM is on."""
        return LoggingUpstream(upstream) if self.settings.debug_upstream else upstream

    async def start(self, services: Services) -> None:
        self.services = services
        self.observer_impl.pricing = Pricing.load(self.settings.pricing_file)  # a bad file stops start-up
        try:
            await self.db.open()
            await self.usage.purge()
        except Exception as exc:
            logger.error("monitoring database %s unavailable (usage history%s will not be kept): %s", self.db.path,
                         "" if self.settings.redis_url else " and savings ledger", exc)
        await self.ledger.start()
        if self.request_log is not None:
            try:
                await self.request_log.open()
            except OSError as exc:
                logger.error("request log %s cannot be opened, it is off: %s", self.request_log.path, exc)
                self.request_log = self.observer_impl.request_log = None
        await self.update_gauges()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cachegate-monitoring")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self.request_log is not None:
            await self.request_log.close()
        with contextlib.suppress(Exception):
            await self.ledger.store.aclose()
        await self.db.close()

    # -- background work --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything pending: ledger deltas, usage rows and request-log lines."""
        self.observer_impl.fold()
        await self.ledger.flush()
        await self.usage.flush()
        if self.request_log is not None:
            await self.request_log.flush()

    async def _run(self) -> None:
        next_log = next_flush = next_gauges = time.monotonic()
        next_purge = time.monotonic() + PURGE_EVERY
        while True:
            await asyncio.sleep(FOLD_EVERY)
            now = time.monotonic()
            try:
                self.observer_impl.fold()
                if self.request_log is not None and now >= next_log:
                    next_log = now + LOG_FLUSH_EVERY
                    await self.request_log.flush()
                if now >= next_flush:
                    next_flush = now + FLUSH_EVERY
                    await self.ledger.flush()
                    await self.usage.flush()
                if now >= next_gauges:
                    next_gauges = now + GAUGE_EVERY
                    await self.update_gauges()
                if now >= next_purge:
                    next_purge = now + PURGE_EVERY
                    await self.usage.purge()
            except Exception:  # keep the loop alive whatever happens
                logger.exception("monitoring background work failed")

    async def update_gauges(self) -> None:
        """Entries and bytes held by each cache tier."""
        services = self.services
        if services is None:
            return
        tiers: list[tuple[str, Any]] = [("exact", services.exact)]
        if services.semantic is not None:
            tiers.append(("semantic", services.semantic))
        for tier, part in tiers:
            usage = getattr(part, "usage", None)
            if usage is None:
                continue
            try:
                entries, size = await asyncio.wait_for(usage(), 2.0)
            except Exception as exc:
                logger.debug("cache size of the %s tier unavailable: %s", tier, exc)
                continue
            self.metrics.cache_entries[tier] = entries
            self.metrics.cache_bytes[tier] = size

    def _background_error(self, component: str, exc: BaseException) -> None:
        self.metrics.errors.inc((component, type(exc).__name__))

    # -- reading ----------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Bring the shared totals (re-read at most once a second) and the cache sizes up to date."""
        self.observer_impl.fold()
        await self.ledger.refresh()
        await self.update_gauges()

    def global_totals(self) -> dict[str, float]:
        self.observer_impl.fold()
        return {name: value for (scope, name), value in self.ledger.totals().items() if scope == GLOBAL}

    def cache_usage(self) -> dict[str, dict[str, int]]:
        return {tier: {"entries": int(entries), "bytes": int(self.metrics.cache_bytes.get(tier, 0))}
                for tier, entries in self.metrics.cache_entries.items()}

    def snapshot(self) -> dict[str, Any]:
        components = {} if self.services is None else {
            name: state.snapshot() for name, state in self.services.failopen.components.items()}
        return self.report.json(cache_usage=self.cache_usage(), components=components,
                                ledger_backend=self.ledger.store.name)
