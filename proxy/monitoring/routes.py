"""Monitoring endpoints: ``/metrics`` (JSON, Prometheus, CSV), ``/metrics/usage`` and ``/kv-cache-metrics``.

``/metrics`` answers JSON unless asked otherwise: ``?format=prometheus`` (or ``csv``), or an ``Accept``
header naming ``text/plain`` or ``application/openmetrics-text`` (what a Prometheus scrape sends) without
``application/json``, gets the Prometheus text format, so a stock scrape config of ``/metrics`` works.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.component import Guard, RouteSpec, route
from proxy.errors import BadRequestError, UnavailableError
from proxy.monitoring.kv import kv_cache_report
from proxy.monitoring.telemetry import Telemetry
from proxy.monitoring.usage import BUCKETS

FORMATS = ("json", "prometheus", "csv")


def wants_prometheus(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    if "application/json" in accept:
        return False
    return "application/openmetrics-text" in accept or "text/plain" in accept


_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def parse_time(raw: str) -> float:
    """Unix seconds, an ISO 8601 date (``2026-02-21``, UTC midnight) or date-time (naive means UTC)."""
    text = raw.strip()
    if _NUMBER.match(text):
        return float(text)
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def usage_params(request: Request, now: float) -> tuple[float, float, str | None, str]:
    params = request.query_params
    problems: dict[str, str] = {}
    times: dict[str, float] = {}
    for name in ("from", "to"):
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        try:
            times[name] = parse_time(raw)
        except ValueError:
            problems[name] = f"'{name}' must be an ISO 8601 date or date-time, or Unix seconds; got {raw!r}"
    bucket = params.get("bucket") or "hour"
    if bucket not in BUCKETS:
        problems["bucket"] = f"'bucket' must be one of {', '.join(BUCKETS)}; got {bucket!r}"
    end = times.get("to", now)
    start = times.get("from", end - 86400)
    if not problems and start > end:
        problems["from"] = "'from' must not be later than 'to'"
    if problems:
        raise BadRequestError("; ".join(problems.values()), param=",".join(problems), code="invalid_query")
    model = params.get("model") or None
    return start, end, model, bucket


class MonitoringRoutes:
    def __init__(self, telemetry: Telemetry, *, refresh: Callable[[], Awaitable[None]],
                 current: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.telemetry = telemetry
        self.refresh = refresh  # fold events, re-read shared totals and cache sizes
        self.current = current  # the /metrics JSON, brought up to date

    def routes(self) -> list[RouteSpec]:
        return [
            route("/metrics", self.metrics, guard=Guard.MONITOR),
            route("/metrics/prometheus", self.prometheus, guard=Guard.MONITOR),
            route("/metrics/csv", self.csv, guard=Guard.MONITOR),
            route("/metrics/usage", self.usage, guard=Guard.MONITOR),
            route("/kv-cache-metrics", self.kv_cache, guard=Guard.MONITOR),
        ]

    async def metrics(self, request: Request) -> Response:
        fmt = request.query_params.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise BadRequestError(f"'format' must be one of {', '.join(FORMATS)}; got {fmt!r}", param="format")
        if fmt == "prometheus" or (fmt is None and wants_prometheus(request)):
            return await self.prometheus(request)
        if fmt == "csv":
            return await self.csv(request)
        return JSONResponse(await self.current())

    async def prometheus(self, request: Request) -> Response:
        await self.refresh()
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(self.telemetry.metrics.registry), media_type=content_type)

    async def csv(self, request: Request) -> Response:
        await self.refresh()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        return Response(self.telemetry.report.csv(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="cachegate-metrics-{stamp}.csv"'})

    async def kv_cache(self, request: Request) -> Response:
        """Provider-side prompt caching per model (:mod:`proxy.monitoring.kv`)."""
        await self.refresh()
        observer = self.telemetry.observer
        return JSONResponse(kv_cache_report(self.telemetry.ledger.totals(), observer.pricing))

    async def usage(self, request: Request) -> Response:
        start, end, model, bucket = usage_params(request, time.time())
        self.telemetry.observer.fold()  # so the rows of requests finished just now are there
        try:
            result = await self.telemetry.usage.query(start=start, end=end, model=model, bucket=bucket)
        except Exception as exc:
            raise UnavailableError(f"The usage history cannot be read: {exc}") from exc
        return JSONResponse(result)
