"""``POST /v1/chat/completions``: the exact tier, the semantic tier, then the upstream.

The order of decisions: validate (4xx, nothing stored or sent), read the client's cache directives,
derive tenant and key, try the tiers unless told not to read, and otherwise ask the upstream once per
key (single flight), relay its answer as it arrives, and store it only if it finished intact.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.singleflight import Flight, SingleFlight
from proxy.contracts import RequestRecord, SemanticProbe, SemanticTier, Upstream
from proxy.core import canonical, policy, sse
from proxy.core.keying import RequestKeys
from proxy.errors import UpstreamError
from proxy.http import headers as hdr
from proxy.http.asgi import headers_of, raw_header_items, receive_body
from proxy.http.responses import SSE, BytesResponse, StreamResponse, error_answer
from proxy.platform.jobs import BackgroundTasks
from proxy.settings import Settings

PATH = "/chat/completions"


@dataclass
class _Call:
    """One chat request on its way through the tiers."""

    body: dict[str, Any]  # shared with other requests of the same bytes: never changed
    raw: bytes
    directives: policy.Directives
    tenant: canonical.Tenant
    key: str
    stream: bool
    record: RequestRecord
    scope: Scope  # the client's headers are decoded from it only when the upstream is asked
    probe: SemanticProbe | None = None


class ChatHandler:
    def __init__(self, settings: Settings, *, upstream: Upstream, exact: ExactCache,
                 flights: SingleFlight[CachedResponse], tasks: BackgroundTasks,
                 semantic: SemanticTier | None = None) -> None:
        self.settings = settings
        self.upstream = upstream
        self.exact = exact
        self.flights = flights
        self.tasks = tasks
        self.semantic = semantic
        self.keys = RequestKeys(prefix=settings.cache_key_prefix, upstream=upstream.base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The pure-ASGI endpoint: errors raised before the response starts become OpenAI-style answers."""
        try:
            response = await self.respond(scope, receive)
        except Exception as exc:
            response = error_answer(exc, scope)
        await response(scope, receive, send)

    def tenant_of(self, headers: Mapping[str, str]) -> tuple[str | None, canonical.Tenant]:
        """The hash of the request's API key, and the tenant its headers name."""
        api_key_hash = canonical.hash_api_key(canonical.api_key_of(headers))
        return api_key_hash, canonical.tenant_for(api_key_hash, headers.get("x-cache-namespace"),
                                                  shared=self.settings.cache_shared)

    def key_for(self, raw: bytes, headers: Mapping[str, str]) -> str:
        """The exact-tier key :meth:`respond` gives these bytes and headers."""
        return self.keys(raw, self.tenant_of(headers)[1]).key

    async def respond(self, scope: Scope, receive: Receive) -> ASGIApp:
        """The answer to one chat request (raises :class:`~proxy.errors.CachegateError` for a bad one)."""
        record: RequestRecord = scope["state"]["record"]
        headers = headers_of(scope)
        raw = await receive_body(receive, headers.get("content-length"), self.settings.max_body_bytes)
        api_key_hash, tenant = self.tenant_of(headers)
        keyed = self.keys(raw, tenant)
        directives = policy.parse_directives(headers)
        body = keyed.body
        upstream_url = self.upstream.base_url
        call = _Call(body, raw, directives, tenant, keyed.key, keyed.stream, record, scope)
        record.model, record.stream, record.api_key_hash = body["model"], call.stream, api_key_hash

        if directives.bypass:
            record.outcome = "bypass"
            return await self._forward(call, None, cache_header="BYPASS")
        if directives.read:
            entry = await self.exact.lookup(call.key)
            if entry is not None:
                return self._hit(call, entry, tier="exact")
            if self.semantic is not None:
                semantic_scope = canonical.semantic_scope(body, upstream=upstream_url, tenant=tenant)
                call.probe = await self.semantic.lookup(body, scope=semantic_scope, namespace=tenant.namespace,
                                                        request_id=record.request_id)
                if call.probe is not None:
                    record.shadow_hit = call.probe.shadow_hit
                    if call.probe.entry is not None:
                        return self._hit(call, call.probe.entry, tier="semantic", key=canonical.semantic_key(
                                         self.settings.cache_key_prefix, call.probe.point_id or ""),
                                         similarity=call.probe.similarity)
            flight: Flight[CachedResponse] | None = self.flights.join(call.key)
            if flight is not None and not flight.leader:
                shared = await flight.wait()
                if shared is not None:
                    return self._hit(call, shared, tier="exact")
                flight = None  # the leader failed: ask the upstream ourselves
        else:
            flight = None
        record.outcome = "miss"
        return await self._forward(call, flight, cache_header="MISS")

    # -- answering from the cache -----------------------------------------------------------------

    def _hit(self, call: _Call, entry: CachedResponse, *, tier: str, key: str | None = None,
             similarity: float | None = None) -> ASGIApp:
        record = call.record
        record.outcome, record.tier, record.similarity = f"{tier}_hit", tier, similarity
        record.usage = entry.usage
        headers = [(b"x-cache", b"HIT"), (b"x-cache-tier", tier.encode()),
                   (b"age", str(entry.age(time.time())).encode()), (b"x-cache-key", (key or call.key).encode())]
        if similarity is not None:
            headers.append((b"x-cache-similarity", f"{similarity:.4f}".encode()))
        if not call.stream:
            return BytesResponse(entry.body, headers=headers)
        frames = sse.replay(entry.completion, include_usage=policy.wants_usage_chunk(call.body))
        return StreamResponse(_iterate(frames), headers=headers)

    # -- asking the upstream ----------------------------------------------------------------------

    async def _forward(self, call: _Call, flight: Flight[CachedResponse] | None, *,
                       cache_header: str) -> ASGIApp:
        headers = hdr.to_upstream(raw_header_items(call.scope), self.settings.upstream_api_key)
        body, content, hide_usage = call.body, call.raw, False  # the client's own bytes, unless changed
        if call.stream and self.settings.upstream_stream_usage and not policy.wants_usage_chunk(body):
            # ask for usage anyway, so the ledger and the cached entry know what the answer cost
            options = body.get("stream_options")
            content = orjson.dumps({**body, "stream_options": {**(options if isinstance(options, dict) else {}),
                                                               "include_usage": True}})
            hide_usage = True
        started = time.perf_counter()
        try:
            response = await self.upstream.send("POST", PATH, headers=headers, content=content)
        except BaseException:
            if flight is not None:
                self.flights.release(flight)
            raise
        call.record.upstream_seconds = time.perf_counter() - started
        out_headers = [*hdr.to_client(response.headers), ("x-cache", cache_header)]
        storable = response.status_code == 200
        if call.stream and storable and _is_event_stream(response.headers):
            return StreamResponse(self._relay(call, flight, response.body, started, hide_usage=hide_usage),
                                  headers=out_headers)
        try:
            raw = await response.read()
        except BaseException:
            if flight is not None:
                self.flights.release(flight)
            raise
        call.record.upstream_seconds = time.perf_counter() - started
        completion = _json_or_none(raw) if storable else None
        if isinstance(completion, dict):
            call.record.usage = completion.get("usage")
        self._finish(call, flight, completion if policy.is_complete(completion) else None, raw)
        if call.stream and completion is not None and policy.is_complete(completion):
            # the upstream answered a stream request with a plain body: give the client the stream it asked for
            frames = sse.replay(completion, include_usage=policy.wants_usage_chunk(call.body))
            return StreamResponse(_iterate(frames), headers=out_headers)
        return BytesResponse(raw, status=response.status_code, headers=out_headers, media_type=None)

    async def _relay(self, call: _Call, flight: Flight[CachedResponse] | None, body: AsyncIterator[bytes],
                     started: float, *, hide_usage: bool) -> AsyncIterator[bytes]:
        """Pass the upstream's events through as they arrive while assembling them for the cache.

        Bytes are relayed as they came, unless the usage event we asked for must be hidden: then events
        are re-framed one by one (same data, without that one event).
        """
        parser, assembler = sse.SSEParser(), sse.StreamAssembler()
        completion = None
        try:
            async for chunk in body:
                if call.record.ttft is None:
                    call.record.ttft = time.perf_counter() - started
                if not hide_usage:
                    for data in parser.feed(chunk):
                        assembler.add(data)
                    yield chunk
                    continue
                for data in parser.feed(chunk):
                    if not sse.is_usage_only(assembler.add(data)):
                        yield sse.encode_event(data)
            completion = None if parser.pending else assembler.result()
        except UpstreamError as exc:
            call.record.stream_failed = True
            yield sse.encode_event(exc.to_dict())
        finally:
            call.record.upstream_seconds = time.perf_counter() - started
            if completion is None:
                call.record.stream_failed = True
            else:
                call.record.usage = completion.get("usage")
            self._finish(call, flight, completion, None)
            await body.aclose()  # type: ignore[attr-defined]

    def _finish(self, call: _Call, flight: Flight[CachedResponse] | None,
                completion: dict[str, Any] | None, raw: bytes | None) -> None:
        """Hand a finished answer to waiting followers, then store it off the request path."""
        if completion is None:
            if flight is not None:
                self.flights.release(flight)
            return
        ttl = policy.choose_ttl(call.directives, call.body, default=self.settings.cache_ttl,
                                creative=self.settings.cache_ttl_creative,
                                creative_temperature=self.settings.cache_creative_temperature)
        entry = CachedResponse.from_completion(completion, model=call.body["model"], stored_at=time.time(),
                                               ttl=ttl)
        if raw is not None:
            entry.body = raw  # plain answers are stored byte for byte
        if flight is not None:
            self.flights.resolve(flight, entry)
        if call.directives.write:
            self.tasks.spawn(self._store(call, flight, entry))
        elif flight is not None:
            self.flights.release(flight)

    async def _store(self, call: _Call, flight: Flight[CachedResponse] | None, entry: CachedResponse) -> None:
        try:
            await self.exact.store(call.key, entry)
            if self.semantic is not None and call.probe is not None:
                self.semantic.remember(call.probe, entry, namespace=call.tenant.namespace)
        finally:
            if flight is not None:
                self.flights.release(flight)


def _is_event_stream(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == "content-type" and value.startswith(SSE) for name, value in headers)


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _iterate(frames: Any) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame
