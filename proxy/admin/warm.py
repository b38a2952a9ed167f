"""``POST /admin/cache/warm``: send a batch of chat requests upstream and store the answers.

Each request goes through the very :class:`~proxy.chat.ChatPipeline` that serves live traffic (same key,
TTL, single flight, exact and semantic storage), with at most ``concurrency`` of them in flight. Requests
are sent without ``stream``: the key ignores it and a stored plain answer also serves stream requests.

Whose cache is filled: the tenant of the ``X-Warm-Api-Key`` header (that key is also what the upstream sees,
unless UPSTREAM_API_KEY replaces it), in the namespace of ``X-Cache-Namespace``; without ``X-Warm-Api-Key``
the anonymous tenant (or everyone's, with CACHE_SHARED=true). ``X-Cache-TTL`` applies to every entry.
Warming is an admin operation, not client traffic: it is not counted in ``/metrics``.

**From history**: ``{"from": "popular", "top": N}`` (N from 1 to :data:`MAX_REQUESTS`) re-asks the N most-hit
entries that expired in the last day, from the requests kept with them (``CACHE_KEEP_REQUESTS=true``,
:mod:`proxy.cache.history`; without it this is a 400 saying so). Each is parsed again with the headers kept
with it; it is re-asked under its own key when ``X-Warm-Api-Key`` is its tenant's key, or with
``UPSTREAM_API_KEY`` set (the upstream then never sees a client key, so the answer is the one the tenant
would get); other tenants' entries are skipped, each result saying why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from proxy.cache.exact import ExactCache
from proxy.cache.history import Asked, RequestHistory
from proxy.chat.pipeline import ChatPipeline
from proxy.contracts import RequestRecord
from proxy.core.canonical import Tenant
from proxy.core.request import ChatRequestParser
from proxy.errors import BackendError, BadRequestError, CachegateError, UnavailableError
from proxy.http.params import check_names, repeated
from proxy.platform.jobs import JobRunner

MAX_REQUESTS = 1000
MAX_CONCURRENCY = 32
DEFAULT_CONCURRENCY = 4
#: headers of the admin request that are handed to every warmed request
_PASSED_HEADERS = ("x-cache-namespace", "x-cache-ttl")
GROUP = "warm"  # the job runner's group of warm's background stores
_JSONL_TYPES = {"application/x-ndjson", "application/jsonl", "application/x-jsonlines", "text/plain"}


@dataclass
class WarmBatch:
    requests: list[Any]
    concurrency: int
    popular: int | None = None  # {"from": "popular", "top": N}: re-ask the N most-hit expired entries


#: the keys of a ``{"requests": [...]}`` body
BATCH_KEYS = frozenset({"requests", "concurrency"})


def parse_batch(raw: bytes, content_type: str, query: Mapping[str, str]) -> WarmBatch:
    """A JSON array of chat requests, ``{"requests": [...], "concurrency": n}``, or JSON lines; a key of that
    object other than :data:`BATCH_KEYS`, or ``concurrency`` in both the body and the query, is a 400."""
    text_type = content_type.split(";", 1)[0].strip().lower()
    concurrency: Any = query.get("concurrency")
    items: Any
    if text_type in _JSONL_TYPES:
        items = _json_lines(raw)
    else:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = _json_lines(raw)  # JSON lines sent without saying so
        if isinstance(parsed, dict) and "from" in parsed:
            return _from_history(parsed, query)
        if isinstance(parsed, dict) and isinstance(parsed.get("requests"), list):
            check_names(parsed, BATCH_KEYS, "POST /admin/cache/warm")
            if "concurrency" in parsed and concurrency is not None:
                raise repeated("concurrency", "POST /admin/cache/warm")
            items = parsed["requests"]
            concurrency = parsed.get("concurrency", concurrency)
        elif isinstance(parsed, dict) and "messages" in parsed:
            items = [parsed]
        else:
            items = parsed
    if not isinstance(items, list) or not items:
        raise BadRequestError("Send a non-empty JSON array of chat requests, {\"requests\": [...]}, or JSON lines.",
                              param="requests", code="invalid_body")
    if len(items) > MAX_REQUESTS:
        raise BadRequestError(f"At most {MAX_REQUESTS} requests per warm call, got {len(items)}.",
                              param="requests", code="too_many_requests")
    if concurrency is None:
        concurrency = DEFAULT_CONCURRENCY
    try:
        concurrency = int(concurrency)
    except (TypeError, ValueError):
        raise BadRequestError("concurrency must be a whole number.", param="concurrency") from None
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BadRequestError(f"concurrency must be from 1 to {MAX_CONCURRENCY}.", param="concurrency")
    return WarmBatch(items, concurrency)


def _from_history(body: dict[str, Any], query: Mapping[str, str]) -> WarmBatch:
    if body.get("from") != "popular":
        raise BadRequestError("'from' must be \"popular\" (the most-hit entries that expired in the last day).",
                              param="from", code="invalid_value")
    unknown = sorted(set(body) - {"from", "top", "concurrency"})
    if unknown:
        raise BadRequestError(f"Unknown field for warming from history: {', '.join(unknown)}.", param=unknown[0],
                              code="unknown_parameter")
    top = body.get("top")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_REQUESTS:
        raise BadRequestError(f"'top' must be a whole number from 1 to {MAX_REQUESTS}.", param="top",
                              code="invalid_value")
    batch = parse_batch(orjson.dumps({"requests": [{}], "concurrency": body.get("concurrency",
                                                                              query.get("concurrency"))}),
                        "application/json", {})
    return WarmBatch([], batch.concurrency, popular=top)


def _json_lines(raw: bytes) -> list[Any]:
    items = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise BadRequestError(f"Line {number} of the body is not valid JSON (expected a JSON array or "
                                  "one JSON object per line).", code="invalid_json") from None
    return items


def _error_message(body: bytes) -> str | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace") or None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return str(parsed["error"].get("message"))
    return None


class Warmer:
    """Warms through ``pipeline``: the live pipeline's parts, storing in the job runner's ``warm`` group so
    that waiting for warm's stores never waits for live traffic's."""

    def __init__(self, parser: ChatRequestParser, pipeline: ChatPipeline, *, jobs: JobRunner,
                 exact: ExactCache, history: RequestHistory | None = None, upstream_api_key: str | None = None) -> None:
        self.parser = parser
        self.pipeline = pipeline
        self.jobs = jobs
        self.exact = exact
        self.history = history
        self.upstream_api_key = upstream_api_key

    async def warm(self, batch: WarmBatch, request: Request) -> dict[str, Any]:
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        warm_key = request.headers.get("x-warm-api-key", "").strip()
        if warm_key:
            headers.append((b"authorization", f"Bearer {warm_key}".encode()))
        for name in _PASSED_HEADERS:
            if name in request.headers:
                headers.append((name.encode(), request.headers[name].encode("latin-1")))
        semaphore = asyncio.Semaphore(batch.concurrency)
        started = time.perf_counter()
        if batch.popular is not None:
            asked = await self._popular(batch.popular)

            async def again(index: int, item: Asked) -> dict[str, Any]:
                async with semaphore:
                    return await self._again(index, item, warm_key, request.headers.get("x-cache-ttl"))

            results = list(await asyncio.gather(*(again(i, item) for i, item in enumerate(asked))))
        else:
            async def one(index: int, item: Any) -> dict[str, Any]:
                async with semaphore:
                    return await self._one(index, item, headers)

            results = list(await asyncio.gather(*(one(i, item) for i, item in enumerate(batch.requests))))
        await self.jobs.flush(GROUP, timeout=30.0)
        for result in results:
            if result.get("key") and result["status"] == 200:
                result["cached"] = await _present(self.exact, result["key"])
        return {
            "total": len(results),
            "cached": sum(1 for r in results if r.get("cached")),
            "already_cached": sum(1 for r in results if r.get("x_cache") == "HIT"),
            "failed": sum(1 for r in results if r["status"] not in (200, 0)),
            "skipped": sum(1 for r in results if r.get("skipped")),
            "concurrency": batch.concurrency,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "results": results,
        }

    async def _popular(self, top: int) -> list[Asked]:
        if self.history is None:
            raise BadRequestError("Warming from history needs the requests kept with the entries: set "
                                  "CACHE_KEEP_REQUESTS=true (see the README for what that stores).", param="from",
                                  code="history_off")
        try:
            return await self.history.popular(top)
        except Exception as exc:
            raise UnavailableError(f"The request history cannot be read: {exc}") from exc

    async def _again(self, index: int, asked: Asked, warm_key: str, ttl: str | None) -> dict[str, Any]:
        """Re-ask one kept request under its own key (see the module's docstring for whose)."""
        result: dict[str, Any] = {"index": index, "status": 0, "cached": False, "key": asked.key,
                                  "model": asked.model, "hits": asked.hits}
        headers = [(b"content-type", b"application/json"),
                   *[(name.encode("latin-1"), value.encode("latin-1")) for name, value in asked.headers]]
        if warm_key:
            headers.append((b"authorization", f"Bearer {warm_key}".encode()))
        if ttl is not None:
            headers.append((b"x-cache-ttl", ttl.encode("latin-1")))
        try:  # sent without stream, as every warmed request is (the key ignores it)
            kept = self.parser.parse(asked.body, headers, asked.query).body
            request = self.parser.parse(orjson.dumps({k: v for k, v in kept.items()
                                                      if k not in {"stream", "stream_options"}}), headers, asked.query)
        except CachegateError as exc:
            return {**result, "status": exc.status_code, "error": exc.message}
        if request.key != asked.key:
            if self.upstream_api_key is None:
                return {**result, "skipped": True, "error": "another tenant's entry: send its key as X-Warm-Api-Key, "
                                                            "or set UPSTREAM_API_KEY"}
            request = dataclasses.replace(request, key=asked.key, api_key_hash=None,
                                          tenant=Tenant(asked.owner, request.tenant.namespace))
        record = RequestRecord(request_id=f"warm-{index}", route="/admin/cache/warm", method="POST",
                               started_at=time.time())
        try:
            answer = await self.pipeline.answer(request, record)
        except CachegateError as exc:
            return {**result, "status": exc.status_code, "error": exc.message}
        result.update(status=answer.status, x_cache=answer.cache, cached=answer.cache == "HIT")
        if answer.status != 200:
            result["error"] = _error_message(answer.body or b"")
        return result

    async def _one(self, index: int, item: Any, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        result: dict[str, Any] = {"index": index, "status": 0, "cached": False, "key": None}
        if not isinstance(item, dict):
            return {**result, "status": 400, "error": "Each request must be a JSON object."}
        body = {k: v for k, v in item.items() if k not in {"stream", "stream_options"}}
        raw = orjson.dumps(body)
        # Not handed to the observer: warming is not client traffic.
        record = RequestRecord(request_id=f"warm-{index}", route="/admin/cache/warm", method="POST",
                               started_at=time.time())
        try:
            answer = await self.pipeline.answer(self.parser.parse(raw, headers), record)
        except CachegateError as exc:
            return {**result, "status": exc.status_code, "error": exc.message}
        result.update(status=answer.status, x_cache=answer.cache, model=body.get("model"))
        if answer.status == 200:
            result["key"] = answer.key
            result["cached"] = answer.cache == "HIT"
        else:
            result["error"] = _error_message(answer.body or b"")
        return result


async def _present(exact: ExactCache, key: str) -> bool:
    """Whether a level holds the entry: any level (the first may not keep writes: the local copy of Redis)."""
    for level in exact.levels:
        try:
            if await level.get(key) is not None:
                return True
        except BackendError:
            continue
    return False
