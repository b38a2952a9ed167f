"""What monitoring records, built without I/O: metrics, the savings ledger, usage rows, the request log,
and the :class:`~proxy.monitoring.observer.MonitoringObserver` that feeds them all.

The composition root builds this first, because every part that reports events (the tiers, fail-open
book-keeping, the request middleware) is handed its observer; the :class:`~proxy.monitoring.component.
Monitoring` component, built last, serves and flushes what is recorded here.
"""

from __future__ import annotations

from typing import Any

from proxy.component import HealthCheck
from proxy.monitoring.ledger import GLOBAL, Ledger, LedgerStore
from proxy.monitoring.observer import MonitoringObserver
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.registry import LedgerCollector, Metrics
from proxy.monitoring.report import Report
from proxy.monitoring.request_log import RequestLog
from proxy.monitoring.usage import UsageStore
from proxy.platform.sql import SqlDatabase
from proxy.settings import Settings


class Telemetry:
    def __init__(self, settings: Settings, *, database: SqlDatabase, ledger_store: LedgerStore) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.database = database
        self.ledger = Ledger(ledger_store, on_error=self.background_error)
        self.usage = UsageStore(database, retention_days=settings.usage_retention_days,
                                on_drop=lambda n: self.metrics.dropped.inc(("usage",), n),
                                on_error=self.background_error)
        self.request_log = RequestLog(settings.log_path) if settings.log_path else None
        self.observer = MonitoringObserver(metrics=self.metrics, ledger=self.ledger, pricing=Pricing(),
                                           window_seconds=settings.metrics_window_seconds, usage=self.usage,
                                           request_log=self.request_log)
        self.report = Report(self.observer)
        self.metrics.registry.register(LedgerCollector(self.global_totals))

    def history_check(self) -> HealthCheck:
        """``/health``'s entry for the usage history's database: does it answer (``degraded`` when not: no
        request needs it), and the writer's backlog (rows pending, written, dropped because the bounded buffer
        was full)."""
        async def ping() -> None:
            await self.database.fetch("SELECT 1")

        return HealthCheck("history", ping=ping, details=self.history_state, critical=False)

    def history_state(self) -> dict[str, Any]:
        return {"backend": self.database.dialect.name, "where": self.database.describe(), **self.usage.state()}

    def background_error(self, component: str, exc: BaseException) -> None:
        self.metrics.errors.inc((component, type(exc).__name__))

    def global_totals(self) -> dict[str, float]:
        self.observer.fold()
        return {name: value for (scope, name), value in self.ledger.totals().items() if scope == GLOBAL}

    def traffic(self) -> dict[str, Any]:
        """The window's request rate, error rate and per-endpoint latency (``/health/detailed``)."""
        return self.report.detailed_health()

