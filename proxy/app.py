"""The composition root: :func:`build` makes every part from the settings and hands each the pieces it
uses; :func:`create_app` wires what the parts contribute (:mod:`proxy.component`) into one ASGI app.

Nothing is global: every part is made here, once per app, without I/O; the lifespan starts the parts in
the order of :attr:`Parts.components` (and the job runner with every contributed job), and stops them in
reverse after the jobs. To add a component: write a class with ``contribution()``, ``start()`` and
``stop()`` (:class:`~proxy.health.Health` is the smallest example), build it in :func:`build` with what it
needs, and list it in ``components``. Its dashboard panels are collected from its contribution like its
routes: the dashboard, built last, is given every component's (:func:`collect_panels`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import socket
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp

from proxy import registry
from proxy.access.guards import Access
from proxy.access.ratelimit import RateLimiter
from proxy.admin import OperatorSurface
from proxy.admin.dashboard import DashboardPage, DashboardRoutes
from proxy.admin.warm import GROUP as WARM_GROUP
from proxy.admin.warm import Warmer
from proxy.api import CHAT_ROUTE, ProxiedApi
from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.history import FILENAME as HISTORY_FILE
from proxy.cache.history import RequestHistory
from proxy.cache.singleflight import SingleFlight
from proxy.chat.coalesce import Coalescer
from proxy.chat.endpoint import ChatEndpoint
from proxy.chat.memory_hits import MemoryHits, can_answer_early
from proxy.chat.pipeline import ChatPipeline
from proxy.chat.refresh import Refresher, RefreshPolicy, SharedLease
from proxy.component import Component, Contribution, Panel, RouteSpec
from proxy.contracts import Embedder, ExactBackend, Observer, SemanticBackend, Upstream
from proxy.core.request import ChatRequestParser, TtlRule
from proxy.health import Health
from proxy.http.application import CachegateApp
from proxy.http.middleware import RequestContextMiddleware, RequestRecords
from proxy.monitoring import Monitoring, Telemetry
from proxy.monitoring import schema as monitoring_schema
from proxy.monitoring.alerts import Alerts, Origin, Sampler, address_of, export_states
from proxy.monitoring.upstream_debug import LoggingUpstream
from proxy.monitoring.warnings import Thresholds
from proxy.monitoring.webhook import Webhook
from proxy.passthrough import PassthroughHandler
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import JobRunner
from proxy.platform.locks import Locks
from proxy.platform.redis import RedisHome
from proxy.platform.secret import TenantSecret
from proxy.probe import schema as probe_schema
from proxy.probe.clock import Clock
from proxy.probe.component import ProbeMonitor, build_monitor
from proxy.probe.sql_store import SqlProbeStore
from proxy.semantic.feedback import FeedbackStore, TenantOf
from proxy.semantic.labels import FILENAME as LABELS_FILE
from proxy.semantic.labels import FeedbackLabels
from proxy.semantic.tier import GUARDED_THRESHOLD, VERIFIED_THRESHOLD, SemanticCache
from proxy.semantic.verifier import Verifier
from proxy.settings import Settings
from proxy.upstream import HttpUpstream

REFRESH_GROUP = "refresh"  # the job runner's group of background refreshes


@dataclass(frozen=True)
class Parts:
    """What :func:`build` made: the app's parts, in the order they start."""

    settings: Settings
    jobs: JobRunner
    telemetry: Telemetry
    observer: Observer
    failopen: FailOpen
    redis: RedisHome | None
    locks: Locks
    exact: ExactCache
    semantic: SemanticCache | None
    pipeline: ChatPipeline
    health: Health
    access: Access
    monitoring: Monitoring
    operator: OperatorSurface
    api: ProxiedApi
    probe: ProbeMonitor | None
    alerts: Alerts
    dashboard: DashboardRoutes
    components: tuple[Component, ...]


def build(settings: Settings, *, worker: int | None = None, upstream: Upstream | None = None,
          exact_backend: ExactBackend | None = None, observer: Observer | None = None,
          semantic_backend: SemanticBackend | None = None, embedder: Embedder | None = None,
          verifier: Verifier | None = None, probe_clock: Clock | None = None,
          probe_upstream: Upstream | None = None) -> Parts:
    """Every part, made from ``settings``. ``worker`` is this process's number under ``cachegate serve --workers``
    (``None`` for a process on its own), which its alerts name; the other keyword arguments replace the
    configured backends (tests)."""
    kind = registry.store_kind(settings)
    jobs = JobRunner()
    redis = registry.redis_home(settings)
    history_db = registry.HISTORY_DATABASES[registry.history_kind(settings)]  # usage rows, the probe's history
    database = history_db(settings, monitoring_schema.SCHEMA)
    ledger_store = registry.LEDGER_STORES[registry.ledger_kind(settings)](settings, redis, database)
    telemetry = Telemetry(settings, database=database, ledger_store=ledger_store)
    observer = observer or telemetry.observer
    failopen = FailOpen(observer)
    upstream = upstream or HttpUpstream(settings.upstream_base_url, timeout=settings.upstream_timeout)
    if settings.debug_upstream:
        upstream = LoggingUpstream(upstream)
    levels = [exact_backend] if exact_backend is not None else [
        registry.EXACT_BACKENDS[level](settings, redis) for level in registry.exact_levels(settings)]
    exact = ExactCache(levels, prefix=settings.cache_key_prefix, observer=observer, failopen=failopen,
                       keep_expired=settings.cache_keep_expired)
    locks = registry.LOCKS[kind](redis)

    secret = TenantSecret(configured=settings.tenant_secret, data_dir=settings.data_path, redis=redis,
                          prefix=settings.cache_key_prefix)
    parser = ChatRequestParser(prefix=settings.cache_key_prefix, upstream=upstream.base_url,
                               shared=settings.cache_shared, secret=lambda: secret.value,
                               key_headers=settings.cache_key_headers)
    semantic = _semantic_tier(settings, observer=observer, failopen=failopen, jobs=jobs, backend=semantic_backend,
                              embedder=embedder, verifier=verifier,
                              tenant_of=lambda headers: parser.tenant(headers)[1].owner,
                              feedback=registry.FEEDBACK_STORES[kind](settings, redis))
    history = RequestHistory(settings.data_path / HISTORY_FILE) if settings.cache_keep_requests else None
    refresher = Refresher(RefreshPolicy(ahead=settings.cache_refresh_ahead, min_hits=settings.cache_refresh_min_hits,
                                        fraction=settings.cache_refresh_ahead_fraction,
                                        max_per_minute=settings.cache_refresh_max_per_minute,
                                        creative_temperature=settings.cache_creative_temperature),
                          spawn=functools.partial(jobs.spawn, group=REFRESH_GROUP),
                          # one refresh per key across replicas when they share Redis; the lease outlives a refresh
                          lease=SharedLease(locks, prefix=settings.cache_key_prefix,
                                            ttl=settings.upstream_timeout + 5.0) if redis is not None else None)
    # Identical misses share one upstream call in this process, and across replicas when they share Redis.
    coalescer = Coalescer(SingleFlight[CachedResponse](), exact=exact, observer=observer, spawn=jobs.spawn,
                          wait=settings.cache_lock_timeout, prefix=settings.cache_key_prefix,
                          locks=locks if redis is not None else None)
    pipeline = ChatPipeline(upstream=upstream, exact=exact, coalescer=coalescer, spawn=jobs.spawn,
                            semantic=semantic, ttl=TtlRule(settings.cache_ttl, settings.cache_ttl_creative,
                                                           settings.cache_creative_temperature),
                            prefix=settings.cache_key_prefix, ask_usage=settings.upstream_stream_usage,
                            upstream_api_key=settings.upstream_api_key,
                            stale_if_error=min(settings.cache_stale_if_error, settings.cache_keep_expired),
                            history=history, refresher=refresher)
    api = ProxiedApi(ChatEndpoint(parser, pipeline, max_body_bytes=settings.max_body_bytes),
                     PassthroughHandler(settings, upstream), upstream)
    limiter = None
    if settings.rate_limit_per_minute > 0:
        limiter = RateLimiter(settings.rate_limit_per_minute, registry.RATE_COUNTERS[kind](redis),
                              prefix=settings.cache_key_prefix, failopen=failopen)
    access = Access(settings, limiter=limiter)

    probe = None
    if settings.probe_monitor_enabled:  # a probe that cannot run (Venice without a key) stops start-up here
        probe = build_monitor(settings, jobs=jobs, redis=redis, locks=locks, metrics=telemetry.metrics,
                              clock=probe_clock, upstream=probe_upstream,
                              store=SqlProbeStore(history_db(settings, probe_schema.SCHEMA)))
    backends: list[Component] = [part for part in (redis, exact, semantic) if part is not None]
    checked = [*backends, *([probe] if probe is not None else [])]
    webhook = Webhook(settings.alert_webhook_url) if settings.alert_webhook_url else None
    origin = Origin(address_of(settings.host, settings.port, socket.gethostname()), worker)
    alerts = Alerts(_thresholds(settings), webhook=webhook, origin=origin,
                    every=settings.alert_check_seconds,
                    sample=Sampler(telemetry.metrics, failopen, fold=telemetry.observer.fold,
                                   false_hits=lambda: semantic.stats["feedback_wrong"] if semantic else 0))
    export_states(telemetry.metrics, failopen, feedback=semantic.stats if semantic is not None else None,
                  refreshes=refresher.counts)
    health = Health([*[check for part in checked for check in part.contribution().checks], telemetry.history_check()],
                    failopen, traffic=telemetry.traffic, warnings=alerts.active)
    monitoring = Monitoring(telemetry, levels=[exact.level_reports, *([semantic.levels] if semantic else [])],
                            failopen=failopen)
    warm_pipeline = ChatPipeline(upstream=upstream, exact=exact, coalescer=coalescer,
                                 spawn=functools.partial(jobs.spawn, group=WARM_GROUP), semantic=semantic,
                                 ttl=pipeline.ttl, prefix=pipeline.prefix, ask_usage=pipeline.ask_usage,
                                 upstream_api_key=pipeline.upstream_api_key, stale_if_error=pipeline.stale_if_error,
                                 history=history)
    operator = OperatorSurface(settings, access=access.control, exact=exact, semantic=semantic,
                               warmer=Warmer(parser, warm_pipeline, jobs=jobs, exact=exact, history=history,
                                             upstream_api_key=settings.upstream_api_key), health=health,
                               metrics=monitoring.current)
    drawn = (*backends, *([history] if history is not None else []), secret, api, access, health, monitoring,
             *([probe] if probe is not None else []), operator, alerts, *([webhook] if webhook is not None else []))
    dashboard = DashboardRoutes(page=DashboardPage(), access=access.control, panels=collect_panels(drawn))
    components = (*drawn, dashboard)
    return Parts(settings=settings, jobs=jobs, telemetry=telemetry, observer=observer, failopen=failopen, redis=redis,
                 locks=locks, exact=exact, semantic=semantic, pipeline=pipeline, health=health, access=access,
                 monitoring=monitoring, operator=operator, api=api, probe=probe, alerts=alerts, dashboard=dashboard,
                 components=components)


def _thresholds(settings: Settings) -> Thresholds:
    return Thresholds(hit_rate_below=settings.alert_hit_rate_below, min_requests=settings.alert_min_requests,
                      evictions_per_minute=settings.alert_evictions_per_minute, store_fill=settings.alert_store_fill,
                      upstream_error_rate=settings.alert_upstream_error_rate,
                      failopen_per_minute=settings.alert_failopen_per_minute,
                      false_hits_per_hour=settings.alert_false_hits_per_hour,
                      window_seconds=settings.alert_window_seconds)


def collect_panels(components: Sequence[Component]) -> list[Panel]:
    """Every component's dashboard panels, by ``order`` (ties: in the order of ``components``)."""
    panels = [panel for part in components for panel in part.contribution().panels]
    shared = sorted(name for name, count in Counter(panel.id for panel in panels).items() if count > 1)
    if shared:
        raise ValueError(f"dashboard panel ids must be unique; used more than once: {', '.join(shared)}")
    return sorted(panels, key=lambda panel: panel.order)


def _semantic_tier(settings: Settings, *, observer: Observer, failopen: FailOpen, jobs: JobRunner,
                   backend: SemanticBackend | None, embedder: Embedder | None, verifier: Verifier | None,
                   tenant_of: TenantOf, feedback: FeedbackStore) -> SemanticCache | None:
    if settings.semantic_mode == "off":
        return None
    from embedding_service.model_files import ModelFiles

    if verifier is None:
        verifier = registry.VERIFIERS[settings.semantic_verifier](settings)
    return SemanticCache(
        backend=backend or registry.SEMANTIC_STORES[registry.semantic_store_kind(settings)](settings),
        embedder=embedder or registry.EMBEDDERS[registry.embedder_kind(settings)](settings),
        observer=observer, failopen=failopen, jobs=jobs, mode=settings.semantic_mode,
        threshold=settings.semantic_threshold if settings.semantic_threshold is not None else (
            VERIFIED_THRESHOLD if verifier is not None else GUARDED_THRESHOLD),
        verifier=verifier, verifier_threshold=settings.semantic_verifier_threshold,
        verifier_timeout=settings.semantic_verifier_timeout, embedding_timeout=settings.embedding_timeout,
        max_tokens=ModelFiles.read().max_tokens, tenant_of=tenant_of, feedback=feedback,
        feedback_ttl=settings.semantic_feedback_ttl,
        labels=FeedbackLabels(settings.data_path / LABELS_FILE, keep_text=settings.feedback_keep_text))


def _asgi(spec: RouteSpec, access: Access) -> Any:
    """The route's endpoint inside the check its guard asks for (as Starlette's ``Route`` takes it: a request
    handler that needs no check is given as it is, Starlette wraps it)."""
    endpoint = spec.endpoint
    plain = inspect.isfunction(endpoint) or inspect.ismethod(endpoint)
    app: ASGIApp = request_response(endpoint) if plain else endpoint
    guarded = access.guard(app, spec.guard, locked=spec.locked, params=spec.params)
    return endpoint if guarded is app else guarded


def create_app(settings: Settings | None = None, **overrides: Any) -> CachegateApp:
    """The app for ``settings`` (default: from the environment); ``overrides`` go to :func:`build` (a worker's
    number, the backends tests replace)."""
    parts = build(settings or Settings.from_env(), **overrides)
    contributions: list[Contribution] = [part.contribution() for part in parts.components]
    specs = [spec for contribution in contributions for spec in contribution.routes]
    routes: list[BaseRoute] = [Route(spec.path, _asgi(spec, parts.access), methods=list(spec.methods))
                               for spec in specs]
    listeners = [listener for contribution in contributions for listener in contribution.listeners]
    # a client may not choose a request id that feedback can already refer to (issue 10.15)
    taken = parts.semantic.book.remembers if parts.semantic is not None else None
    records = RequestRecords(parts.observer, listeners, taken)
    contributed = [m for contribution in contributions for m in contribution.middleware]
    middleware = [Middleware(RequestContextMiddleware, records=records), *contributed]
    jobs = [job for contribution in contributions for job in contribution.jobs]
    chat = next(spec for spec in specs if spec.path == CHAT_ROUTE)
    chat_app = _asgi(chat, parts.access)
    endpoint = parts.api.chat
    early = None
    if chat_app is endpoint and not contributed and can_answer_early(parts.settings.cache_key_prefix):
        # nothing but the endpoint and the record around the chat route: its memory hits can skip ASGI
        early = MemoryHits(endpoint.parser, endpoint.pipeline, records, path=CHAT_ROUTE,
                           max_body_bytes=endpoint.max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for part in parts.components:
                await part.start()
                started.append(part)
            parts.jobs.start(jobs)
            # Everything built so far (modules, clients, the embedding model) lives as long as the process:
            # moved out of the collector's sight, a full collection no longer walks it. Without this, full
            # collections took up to 38 ms under load and set the p99 of Redis hits (bench/exact_bench.py).
            gc.freeze()
            yield
        finally:
            await parts.jobs.stop()  # periodic jobs end; background writes are drained (bounded)
            for part in reversed(started):
                with contextlib.suppress(Exception):
                    await part.stop()

    app = CachegateApp(chat=chat_app, chat_path=CHAT_ROUTE, chat_middleware=middleware, early=early, routes=routes,
                       lifespan=lifespan)
    app.state.parts = parts
    return app
