"""The admin routes (``/admin/*``, each ``Guard.ADMIN``: see :mod:`proxy.access.auth`).

* ``POST /admin/cache/clear``: both tiers, or ``tier=exact|semantic``, narrowed by ``model`` and
  ``namespace``, or (the exact tier only) by a key ``pattern`` and ``older_than`` seconds (query string or
  JSON body; :mod:`proxy.core.invalidation` checks them). The exact tier is cleared in every level (memory
  and disk) by SCAN over cachegate's own key prefix, never FLUSHDB, so a shared Redis keeps other
  applications' keys.
* ``DELETE /admin/cache/entries/{key}``: one exact-tier entry (hits carry its key in ``x-cache-key``).
* ``GET /admin/stats``: cache sizes, live status of each dependency, and ``/metrics`` in one answer.
* ``GET /admin/config``: the effective settings, every secret (and credentials inside URLs) redacted.
* ``POST /admin/cache/warm``: see :mod:`proxy.admin.warm`.

Each route declares the parameters it reads (``CLEAR_PARAMS``, ``WARM_PARAMS``; the others read none): any
other, a name given twice, or an empty ``tier`` or ``model`` is a 400 naming it, so a clear is never wider
than asked (:mod:`proxy.http.params`). A new narrowing parameter is added to the declared set together with
the code that applies it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.access.auth import AccessControl
from proxy.admin.warm import Warmer, parse_batch
from proxy.cache.exact import ExactCache
from proxy.component import Guard, RouteSpec, route
from proxy.contracts import SemanticAdmin
from proxy.core.invalidation import parse_older_than, parse_pattern
from proxy.errors import BackendError, BadRequestError, NotFoundError, UnavailableError
from proxy.health import Health
from proxy.http.asgi import read_body
from proxy.http.params import check_names, check_query, repeated
from proxy.redaction import scrub
from proxy.settings import Settings

CHECK_TIMEOUT = 3.0
TIERS = ("exact", "semantic")
#: what POST /admin/cache/clear reads, from the query string or a JSON body
CLEAR_PARAMS = frozenset({"tier", "model", "namespace", "pattern", "older_than"})
#: what POST /admin/cache/warm reads from the query string (its body is the batch: see warm.parse_batch)
WARM_PARAMS = frozenset({"concurrency"})


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers={"cache-control": "no-store"})


async def _options(request: Request, declared: frozenset[str],
                   numbers: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The ``declared`` parameters, from the query string or a JSON object body (each name in one of them);
    anything else is a :class:`BadRequestError` naming it. Values are strings, except that a body may give the
    ``numbers`` as JSON numbers (the route's own parser checks those, whatever their type)."""
    where = f"{request.method} {request.url.path}"
    options: dict[str, Any] = check_query(request.scope.get("query_string", b""), declared, where)
    raw = await read_body(request, 64 * 1024)
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequestError("The body must be a JSON object.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise BadRequestError("The body must be a JSON object.", code="invalid_body")
        check_names(body, declared, where)
        for name in body:
            if name in options:
                raise repeated(name, where)
        options.update(body)
    for name, value in options.items():
        if value is not None and not isinstance(value, str) and name not in numbers:
            raise BadRequestError(f"{name} must be a string.", param=name, code="invalid_type")
    return options


class AdminRoutes:
    def __init__(self, settings: Settings, *, access: AccessControl, exact: ExactCache, semantic: SemanticAdmin | None,
                 warmer: Warmer, health: Health, metrics: Callable[[], Awaitable[dict[str, Any]]],
                 started_at: Callable[[], float]) -> None:
        self.settings = settings
        self.access = access
        self.exact = exact
        self.semantic = semantic
        self.warmer = warmer
        self.health = health
        self.current_metrics = metrics
        self.started_at = started_at

    def routes(self) -> list[RouteSpec]:
        return [
            route("/admin/cache/clear", self.clear, "POST", guard=Guard.ADMIN, params=CLEAR_PARAMS),
            route("/admin/cache/entries/{key:path}", self.delete_entry, "DELETE", guard=Guard.ADMIN),
            route("/admin/cache/warm", self.warm, "POST", guard=Guard.ADMIN, params=WARM_PARAMS),
            route("/admin/stats", self.stats, guard=Guard.ADMIN),
            route("/admin/config", self.config, guard=Guard.ADMIN),
        ]

    # -- clearing -------------------------------------------------------------------------------

    async def clear(self, request: Request) -> JSONResponse:
        options = await _options(request, CLEAR_PARAMS, numbers=frozenset({"older_than"}))
        for name in ("tier", "model"):  # empty would read as "every": say so by leaving it out
            if options.get(name) is not None and not options[name].strip():
                raise BadRequestError(f"{name} must not be empty; leave it out to clear every {name}.", param=name,
                                      code="invalid_value")
        tier = (options.get("tier") or "all").strip().lower()
        if tier not in (*TIERS, "all", "both"):
            raise BadRequestError("tier must be exact or semantic (or left out for both).", param="tier",
                                  code="invalid_value")
        model = options.get("model")
        namespace = options.get("namespace")  # "" is the default namespace, None is every namespace
        pattern = None if options.get("pattern") is None else \
            parse_pattern(options["pattern"], self.settings.cache_key_prefix)
        older_than = None if options.get("older_than") is None else parse_older_than(options["older_than"])
        if pattern is not None and (model is not None or namespace is not None):
            raise BadRequestError("pattern cannot be combined with model or namespace: put them in the pattern.",
                                  param="pattern", code="invalid_combination")
        exact_only = "pattern" if pattern is not None else "older_than" if older_than is not None else None
        semantic = self.semantic
        if tier == "semantic" and exact_only is not None:
            raise BadRequestError(f"{exact_only} narrows the exact tier only; leave out tier=semantic.",
                                  param=exact_only, code="invalid_combination")
        if tier == "semantic" and semantic is None:
            raise BadRequestError("The semantic tier is off (SEMANTIC_MODE=off), so there is nothing to clear.",
                                  param="tier", code="tier_disabled")
        removed: dict[str, int] = {}
        skipped: dict[str, str] = {}
        try:
            if tier in ("exact", "all", "both"):
                removed["exact"] = await self.exact.clear(model=model, namespace=namespace, pattern=pattern,
                                                          older_than=older_than)
            if tier in ("semantic", "all", "both"):
                if semantic is None:
                    skipped["semantic"] = "the semantic tier is off"
                elif exact_only is not None:
                    skipped["semantic"] = f"{exact_only} narrows the exact tier only"
                else:
                    removed["semantic"] = await semantic.clear(model=model, namespace=namespace)
        except BackendError as exc:
            raise UnavailableError(f"Could not clear the cache: {exc.message}", code="dependency_unavailable") from exc
        scope: dict[str, Any] = {"tier": "all" if tier == "both" else tier, "model": model, "namespace": namespace}
        if pattern is not None:
            scope["pattern"] = pattern
        if older_than is not None:
            scope["older_than"] = older_than
        return _json({"removed": removed, "total": sum(removed.values()), "skipped": skipped, "scope": scope})

    async def delete_entry(self, request: Request) -> JSONResponse:
        key: str = request.path_params["key"]
        prefix = f"{self.settings.cache_key_prefix}exact:"
        semantic_prefix = f"{self.settings.cache_key_prefix}semantic:"
        if key.startswith(semantic_prefix) and self.semantic is not None:
            return await self._delete_semantic(self.semantic, key, key.removeprefix(semantic_prefix))
        if not key.startswith(prefix):
            raise BadRequestError(f"Not a cachegate cache key: keys start with {prefix!r} or {semantic_prefix!r} "
                                  "(see the x-cache-key header of a hit).", param="key", code="invalid_key")
        try:
            deleted = await self.exact.delete([key])
        except BackendError as exc:
            raise UnavailableError(f"Could not delete the entry: {exc.message}", code="dependency_unavailable") from exc
        if not deleted:
            raise NotFoundError("No cache entry has this key (it may have expired).", param="key",
                                code="entry_not_found")
        return _json({"deleted": deleted, "key": key})

    async def _delete_semantic(self, semantic: SemanticAdmin, key: str, point_id: str) -> JSONResponse:
        try:
            deleted = await semantic.delete(point_id)
        except Exception as exc:  # the store's own errors: report, never a 500
            raise UnavailableError(f"Could not delete the entry: {exc}", code="dependency_unavailable") from exc
        if not deleted:
            raise NotFoundError("No cache entry has this key (it may have expired).", param="key",
                                code="entry_not_found")
        return _json({"deleted": deleted, "key": key})

    # -- warming --------------------------------------------------------------------------------

    async def warm(self, request: Request) -> JSONResponse:
        raw = await read_body(request, self.settings.max_body_bytes)
        batch = parse_batch(raw, request.headers.get("content-type", ""), request.query_params)
        return _json(await self.warmer.warm(batch, request))

    # -- looking ------------------------------------------------------------------------------------

    async def stats(self, request: Request) -> JSONResponse:
        services_status, cache, metrics = await asyncio.gather(
            self.service_status(), self.cache_status(), self.metrics())
        settings = self.settings
        started_at = self.started_at()
        return _json({
            "status": "healthy" if all(s.get("status") != "down" for s in services_status.values()) else "degraded",
            "version": _version(),
            "uptime_seconds": round(time.time() - started_at, 1),
            "started_at": started_at,
            "services": services_status,
            "cache": cache,
            "metrics": metrics,
            "rate_limit": {"per_minute": settings.rate_limit_per_minute,
                           "shared": bool(settings.rate_limit_per_minute and settings.redis_url)},
            "access": {"admin_key": True, "admin_key_source": self.access.admin_key_source,
                       "monitor_key": settings.monitor_api_key is not None},
            "timestamp": time.time(),
        })

    async def config(self, request: Request) -> JSONResponse:
        return _json({"settings": scrub(self.settings.redacted()), "version": _version()})

    async def service_status(self) -> dict[str, dict[str, Any]]:
        """The same live checks as ``/health`` (each dependency pinged now), error texts scrubbed."""
        _, checks = await self.health.check(CHECK_TIMEOUT)
        scrubbed: dict[str, dict[str, Any]] = scrub(checks)
        return scrubbed

    async def cache_status(self) -> dict[str, Any]:
        exact = self.exact
        out: dict[str, Any] = {"exact": {"backend": exact.component, "prefix": exact.prefix}}
        levels = await exact.level_reports()
        known = [level.report for level in levels if level.report.entries is not None]
        if known:
            out["exact"].update(entries=max(r.entries or 0 for r in known), bytes=max(r.bytes or 0 for r in known))
        else:
            out["exact"].update(entries=None, bytes=None, error=scrub(levels[0].report.note or "unavailable"))
        out["exact"]["levels"] = {level.name: scrub(level.snapshot()) for level in levels}
        semantic = self.semantic
        out["semantic"] = {"enabled": semantic is not None, "mode": self.settings.semantic_mode}
        if semantic is not None:
            try:
                out["semantic"]["entries"] = await semantic.count()
            except Exception as exc:
                out["semantic"].update(entries=None, error=scrub(str(exc) or type(exc).__name__))
        return out

    async def metrics(self) -> Any:
        """What ``GET /metrics`` answers (``None`` if monitoring cannot say)."""
        try:
            return await self.current_metrics()
        except Exception:
            return None


def _version() -> str:
    try:
        return metadata.version("cachegate")
    except metadata.PackageNotFoundError:
        return "unknown"
