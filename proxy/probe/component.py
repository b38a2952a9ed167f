"""The probe monitor: scheduled probe cycles, their history, ``/probe/api/*`` and the ``/probe`` page.

Built by the composition root only when the monitor is enabled (``PROBE_ENABLED=true``, or a probe key is
set and ``PROBE_ENABLED`` is not ``false``). It contributes its routes, a ``/health`` check of its store,
two jobs for the one job runner (the scheduler's tick, several times per lock period; retention, daily)
and a dashboard panel linking to ``/probe``. :meth:`ProbeMonitor.start` opens the history (applying its
migrations) and deletes rows past ``PROBE_RETENTION_DAYS``; :meth:`ProbeMonitor.stop` gives the lead up, so
another replica takes over at once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from proxy.component import Contribution, HealthCheck, Job, Panel
from proxy.contracts import Upstream
from proxy.monitoring.registry import Metrics
from proxy.platform.jobs import JobRunner
from proxy.platform.locks import Locks
from proxy.platform.redis import RedisHome
from proxy.probe.budget import Limits
from proxy.probe.catalog import Advertised, list_models
from proxy.probe.clock import Clock, SystemClock
from proxy.probe.config import ProbeTarget, resolve
from proxy.probe.exchange import ProbeClient
from proxy.probe.leader import Leadership, LockLeader, SoloLeader
from proxy.probe.metrics import ProbeMetrics
from proxy.probe.microscope import Microscope
from proxy.probe.page import ProbePage
from proxy.probe.report import ProbeReport
from proxy.probe.routes import ProbeRoutes
from proxy.probe.runner import run_probe
from proxy.probe.scheduler import Plan, ProbeScheduler
from proxy.probe.stepper import TtlStepper
from proxy.probe.store import ProbeStore
from proxy.settings import Settings
from proxy.upstream import HttpUpstream

logger = logging.getLogger("cachegate.probe")
DAY = 86400.0
GROUP = "probe"  # the job runner's group of the probe's spawned work (cycles, TTL steps)


def tick_seconds(lock_seconds: float) -> float:
    """How often the scheduler ticks: at least three times per lock period, so one late tick loses nothing."""
    return min(5.0, lock_seconds / 3)


class ProbeMonitor:
    def __init__(self, *, store: ProbeStore, scheduler: ProbeScheduler, leadership: Leadership, routes: ProbeRoutes,
                 page: ProbePage, upstream: Upstream, clock: Clock, retention_days: int, tick: float) -> None:
        self.store = store
        self.scheduler = scheduler
        self.leadership = leadership
        self.routes = routes
        self.page = page
        self.upstream = upstream
        self.clock = clock
        self.retention_days = retention_days
        self.tick = tick

    def contribution(self) -> Contribution:
        return Contribution(
            routes=[*self.routes.routes(), *self.page.routes()],
            checks=[HealthCheck("probe", ping=self.store.ping)],
            jobs=[Job("probe-scheduler", self.tick, self.scheduler.tick, at_start=True),
                  Job("probe-retention", DAY, self.purge)],
            panels=[Panel("probe", "Prompt-cache probe", "link", "/probe", order=95,
                          note="Which models cache your prompts, since when, and for how long.")],
        )

    async def start(self) -> None:
        try:
            await self.store.open()
            await self.purge()
        except Exception as exc:
            logger.error("probe history (%s) unavailable for now, tried again on each use: %s", self.store.name, exc)

    async def stop(self) -> None:
        try:
            await self.leadership.release()
        finally:
            await self.upstream.aclose()
            await self.store.close()

    async def purge(self) -> int:
        """Delete history older than ``PROBE_RETENTION_DAYS``."""
        removed = await self.store.purge(self.clock.wall() - self.retention_days * DAY)
        if removed:
            logger.info("probe history: deleted %d rows older than %d days", removed, self.retention_days)
        return removed


def _replica() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_monitor(settings: Settings, *, jobs: JobRunner, redis: RedisHome | None, locks: Locks, metrics: Metrics,
                  store: ProbeStore, clock: Clock | None = None, upstream: Upstream | None = None) -> ProbeMonitor:
    """The monitor, made from the settings (no I/O), keeping its history in ``store`` (SQLite or PostgreSQL: the
    registry's choice); raises :class:`~proxy.errors.SettingsError` when the probe cannot run (Venice without a
    key)."""
    target: ProbeTarget = resolve(settings)
    clock = clock or SystemClock()
    upstream = upstream or HttpUpstream(target.upstream_url, timeout=target.timeout, max_connections=16)
    replica = _replica()
    leadership: Leadership = (LockLeader(redis, locks, key=f"{settings.cache_key_prefix}probe:leader",
                                         replica=replica, lock_seconds=settings.probe_lock_seconds, clock=clock)
                              if redis is not None else SoloLeader(clock, replica))
    limits = Limits(settings.probe_daily_token_budget, settings.probe_daily_usd_budget, settings.probe_balance_floor)
    probe_metrics = ProbeMetrics(metrics)
    tests = tuple(test for test in target.tests if test != "ttl") or ("basic",)  # ttl is stepped across cycles

    def client(correlation_id: str) -> ProbeClient:
        return ProbeClient(upstream, clock, api_key=target.api_key, venice=target.venice,
                           correlation_id=correlation_id, max_tokens=target.config.max_tokens)

    async def probe(model: str, prices: Advertised, correlation_id: str) -> ProbeReport:
        return await run_probe(model, tests, upstream, api_key=target.api_key, clock=clock, config=target.config,
                               advertised=prices, venice=target.venice, correlation_id=correlation_id)

    async def catalog() -> dict[str, dict[str, Any]]:
        return {entry["id"]: entry for entry in await list_models(upstream, target.api_key)}

    def spawn(coro: Any) -> Any:
        return jobs.spawn(coro, group=GROUP)

    stepper = TtlStepper(store=store, clock=clock, config=target.config, client=client)
    plan = Plan(settings.probe_interval, settings.probe_concurrency, settings.probe_jitter, target.tests,
                target.models, tick_seconds(settings.probe_lock_seconds))
    scheduler = ProbeScheduler(store=store, clock=clock, leadership=leadership, limits=limits, plan=plan,
                               probe=probe, catalog=catalog, stepper=stepper, metrics=probe_metrics, spawn=spawn,
                               replica=replica)

    async def known() -> set[str]:
        if target.models == ("all",) and not scheduler.entries:
            try:
                scheduler.entries = await catalog()
            except Exception as exc:
                logger.info("probe: GET /models failed: %s", exc)
        configured = {m for m in target.models if m != "all"}
        return configured | set(scheduler.entries) | {row.model for row in await store.latest_verdicts()}

    microscope = Microscope(upstream=upstream, api_key=target.api_key, venice=target.venice, clock=clock,
                            config=target.config, store=store, limits=limits, metrics=probe_metrics,
                            prices=lambda model: scheduler.entries.get(model), known=known)
    routes = ProbeRoutes(store=store, scheduler=scheduler, leadership=leadership, clock=clock, microscope=microscope,
                         known=known, retention_days=settings.probe_retention_days)
    return ProbeMonitor(store=store, scheduler=scheduler, leadership=leadership, routes=routes, page=ProbePage(),
                        upstream=upstream, clock=clock, retention_days=settings.probe_retention_days, tick=plan.tick)
