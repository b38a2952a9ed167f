"""The admin routes (``/admin/*``); who may call them is decided in :mod:`proxy.admin.auth`.

* ``POST /admin/cache/clear``: both tiers, or ``tier=exact|semantic``, narrowed by ``model`` and
  ``namespace`` (query string or JSON body). The exact tier is cleared by SCAN over cachegate's own key
  prefix, never FLUSHDB, so a shared Redis keeps other applications' keys.
* ``DELETE /admin/cache/entries/{key}``: one exact-tier entry (hits carry its key in ``x-cache-key``).
* ``GET /admin/stats``: cache sizes, live status of each dependency, and ``/metrics`` in one answer.
* ``GET /admin/config``: the effective settings, every secret (and credentials inside URLs) redacted.
* ``POST /admin/cache/warm``: see :mod:`proxy.admin.warm`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from proxy.admin.warm import Warmer, parse_batch
from proxy.errors import BackendError, BadRequestError, CachegateError, NotFoundError
from proxy.health import check_services
from proxy.http.asgi import read_body
from proxy.settings import redact_url

if TYPE_CHECKING:
    from proxy.admin import OperatorSurface
    from proxy.app import Services

CHECK_TIMEOUT = 3.0
TIERS = ("exact", "semantic")
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature", "sig")


class DependencyUnavailableError(CachegateError):
    status_code = 503
    error_type = "server_error"
    code = "dependency_unavailable"


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers={"cache-control": "no-store"})


def scrub(value: Any) -> Any:
    """Hide credentials in URLs (``user:pw@`` and secret-looking query parameters) anywhere in ``value``."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "://" in value:
        try:
            url = redact_url(value)
            parts = urlsplit(url)
        except ValueError:
            return "<redacted>"
        if parts.query:
            query = [(k, "<redacted>" if any(w in k.lower() for w in _SECRET_WORDS) else v)
                     for k, v in parse_qsl(parts.query, keep_blank_values=True)]
            url = parts._replace(query=urlencode(query, safe="<>")).geturl()
        return url
    return value


async def _options(request: Request) -> dict[str, Any]:
    """Query parameters, overridden by a JSON object body if one was sent."""
    options: dict[str, Any] = dict(request.query_params)
    raw = await read_body(request, 64 * 1024)
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequestError("The body must be a JSON object.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise BadRequestError("The body must be a JSON object.", code="invalid_body")
        options.update(body)
    for name in ("tier", "model", "namespace"):
        if options.get(name) is not None and not isinstance(options[name], str):
            raise BadRequestError(f"{name} must be a string.", param=name, code="invalid_type")
    return options


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class AdminRoutes:
    def __init__(self, surface: OperatorSurface, services: Services) -> None:
        self.surface = surface
        self.services = services
        self._warmer: Warmer | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/cache/clear", self.clear, methods=["POST"]),
            Route("/admin/cache/entries/{key:path}", self.delete_entry, methods=["DELETE"]),
            Route("/admin/cache/warm", self.warm, methods=["POST"]),
            Route("/admin/stats", self.stats, methods=["GET"]),
            Route("/admin/config", self.config, methods=["GET"]),
        ]

    # -- clearing -------------------------------------------------------------------------------

    async def clear(self, request: Request) -> JSONResponse:
        options = await _options(request)
        tier = (options.get("tier") or "all").strip().lower()
        if tier not in (*TIERS, "all", "both"):
            raise BadRequestError("tier must be exact or semantic (or left out for both).", param="tier",
                                  code="invalid_value")
        model = options.get("model") or None
        namespace = options.get("namespace")  # "" is the default namespace, None is every namespace
        semantic = self.services.semantic
        semantic_clear = getattr(semantic, "clear", None)
        if tier == "semantic" and semantic_clear is None:
            raise BadRequestError("The semantic tier is off (SEMANTIC_MODE=off), so there is nothing to clear.",
                                  param="tier", code="tier_disabled")
        removed: dict[str, int] = {}
        skipped: dict[str, str] = {}
        try:
            if tier in ("exact", "all", "both"):
                removed["exact"] = await self.services.exact.clear(model=model, namespace=namespace)
            if tier in ("semantic", "all", "both"):
                if semantic_clear is None:
                    skipped["semantic"] = "the semantic tier is off"
                else:
                    removed["semantic"] = int(await _maybe_await(semantic_clear(model=model, namespace=namespace)))
        except BackendError as exc:
            raise DependencyUnavailableError(f"Could not clear the cache: {exc.message}",
                                             code="dependency_unavailable") from exc
        return _json({"removed": removed, "total": sum(removed.values()), "skipped": skipped,
                      "scope": {"tier": "all" if tier == "both" else tier, "model": model, "namespace": namespace}})

    async def delete_entry(self, request: Request) -> JSONResponse:
        key: str = request.path_params["key"]
        prefix = f"{self.services.settings.cache_key_prefix}exact:"
        semantic_prefix = f"{self.services.settings.cache_key_prefix}semantic:"
        semantic = self.services.semantic
        if key.startswith(semantic_prefix) and semantic is not None:
            return await self._delete_semantic(key, key.removeprefix(semantic_prefix))
        if not key.startswith(prefix):
            raise BadRequestError(f"Not a cachegate cache key: keys start with {prefix!r} or {semantic_prefix!r} "
                                  "(see the x-cache-key header of a hit).", param="key", code="invalid_key")
        try:
            deleted = await self.services.exact.delete([key])
        except BackendError as exc:
            raise DependencyUnavailableError(f"Could not delete the entry: {exc.message}") from exc
        if not deleted:
            raise NotFoundError("No cache entry has this key (it may have expired).", param="key",
                                code="entry_not_found")
        return _json({"deleted": deleted, "key": key})

    async def _delete_semantic(self, key: str, point_id: str) -> JSONResponse:
        try:
            deleted = await self.services.semantic.delete(point_id)  # type: ignore[union-attr]
        except Exception as exc:  # the store's own errors: report, never a 500
            raise DependencyUnavailableError(f"Could not delete the entry: {exc}") from exc
        if not deleted:
            raise NotFoundError("No cache entry has this key (it may have expired).", param="key",
                                code="entry_not_found")
        return _json({"deleted": deleted, "key": key})

    # -- warming --------------------------------------------------------------------------------

    async def warm(self, request: Request) -> JSONResponse:
        raw = await read_body(request, self.services.settings.max_body_bytes)
        batch = parse_batch(raw, request.headers.get("content-type", ""), request.query_params)
        if self._warmer is None:
            self._warmer = Warmer(self.services)
        return _json(await self._warmer.warm(batch, request))

    # -- looking ------------------------------------------------------------------------------------

    async def stats(self, request: Request) -> JSONResponse:
        services_status, cache, metrics = await asyncio.gather(
            self.service_status(), self.cache_status(), self.metrics(request))
        settings = self.services.settings
        return _json({
            "status": "healthy" if all(s.get("status") != "down" for s in services_status.values()) else "degraded",
            "version": _version(),
            "uptime_seconds": round(time.time() - self.surface.started_at, 1),
            "started_at": self.surface.started_at,
            "services": services_status,
            "cache": cache,
            "metrics": metrics,
            "rate_limit": {"per_minute": settings.rate_limit_per_minute,
                           "shared": bool(settings.rate_limit_per_minute and settings.redis_url)},
            "access": {"admin_key": settings.admin_api_key is not None,
                       "monitor_key": settings.monitor_api_key is not None},
            "timestamp": time.time(),
        })

    async def config(self, request: Request) -> JSONResponse:
        return _json({"settings": scrub(self.services.settings.redacted()), "version": _version()})

    async def service_status(self) -> dict[str, dict[str, Any]]:
        """The same live checks as ``/health`` (each dependency pinged now), error texts scrubbed."""
        _, checks = await check_services(self.services, CHECK_TIMEOUT)
        scrubbed: dict[str, dict[str, Any]] = scrub(checks)
        return scrubbed

    async def cache_status(self) -> dict[str, Any]:
        exact = self.services.exact
        out: dict[str, Any] = {"exact": {"backend": exact.component, "prefix": exact.prefix}}
        try:
            entries, size = await exact.usage()
            out["exact"].update(entries=entries, bytes=size)
            if exact.component == "redis":
                out["exact"]["note"] = "entries and bytes are of the whole Redis database (DBSIZE, used_memory)"
        except BackendError as exc:
            out["exact"].update(entries=None, bytes=None, error=scrub(exc.message))
        semantic = self.services.semantic
        out["semantic"] = {"enabled": semantic is not None, "mode": self.services.settings.semantic_mode}
        count = getattr(semantic, "count", None)
        if count is not None:
            try:
                out["semantic"]["entries"] = int(await _maybe_await(count()))
            except Exception as exc:
                out["semantic"].update(entries=None, error=scrub(str(exc) or type(exc).__name__))
        return out

    async def metrics(self, request: Request) -> Any:
        """What ``GET /metrics`` answers, asked of the router directly (no middleware, no HTTP)."""
        scope = {**request.scope, "method": "GET", "path": "/metrics", "raw_path": b"/metrics",
                 "query_string": b"", "headers": [(b"accept", b"application/json")],
                 "state": {**request.scope.get("state", {})}}
        status = 0
        body = bytearray()

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await request.app.router(scope, receive, send)
            return orjson.loads(body) if status == 200 else None
        except Exception:
            return None


def _version() -> str:
    try:
        return metadata.version("cachegate")
    except metadata.PackageNotFoundError:
        return "unknown"
