"""``ChatPipeline.answer(request) -> Answer``: the exact tier, the semantic tier, then the upstream.

The order of decisions, on a :class:`~proxy.core.request.ChatRequest` that was checked when it was parsed:
bypass goes straight upstream; otherwise, unless the client said not to read, the exact tier, then the
semantic tier, then the single flight (a follower waits for the leader's answer); the leader (or a miss
without a flight) asks the upstream through an :class:`~proxy.chat.exchange.Exchange`, which relays the
answer as it arrives and stores it only if it finished intact.

The pipeline knows no ASGI: the chat endpoint (:mod:`proxy.chat.endpoint`) turns an :class:`Answer` into a
response, and other features (warm, the probe) call :meth:`ChatPipeline.answer` directly.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.history import RequestHistory, asked_of
from proxy.chat.coalesce import Claim, Coalescer
from proxy.chat.exchange import Exchange, Spawn
from proxy.chat.refresh import Refresher
from proxy.contracts import ByteStream, RequestRecord, SemanticProbe, SemanticTier, Upstream, UpstreamResponse
from proxy.core import canonical, identifiers, policy, replay
from proxy.core.request import ChatRequest, TtlRule
from proxy.errors import UpstreamError
from proxy.http import headers as hdr
from proxy.http.asgi import RequestIds
from proxy.http.responses import JSON, SSE

PATH = "/chat/completions"


@dataclass
class Answer:
    """What to send back: a plain ``body`` or a stream of ``events`` (closing it finishes the exchange)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    cache: str  # HIT, STALE, MISS or BYPASS
    key: str | None  # the entry that answered a hit, or the key a miss is stored under
    body: bytes | None = None
    events: ByteStream | None = None
    media_type: str | None = JSON


#: Models whose upstream refused ``stream_options`` remembered at most (then the oldest is forgotten).
REFUSERS = 1024
_JSON = (b"content-type", JSON.encode())  # a plain hit's, given with its headers: the response need not look
_HIT, _STALE, _EXACT = (b"x-cache", b"HIT"), (b"x-cache", b"STALE"), (b"x-cache-tier", b"exact")


class ChatPipeline:
    def __init__(self, *, upstream: Upstream, exact: ExactCache, coalescer: Coalescer, spawn: Spawn,
                 semantic: SemanticTier | None, ttl: TtlRule, prefix: str, ask_usage: bool,
                 upstream_api_key: str | None, stale_if_error: float = 0.0,
                 history: RequestHistory | None = None, refresher: Refresher | None = None) -> None:
        self.upstream = upstream
        self.exact = exact
        self.coalescer = coalescer  # who asks the upstream for identical misses (proxy.chat.coalesce)
        self.spawn = spawn
        self.semantic = semantic
        self.ttl = ttl
        self.prefix = prefix
        self.ask_usage = ask_usage
        self.upstream_api_key = upstream_api_key
        self.stale_if_error = stale_if_error  # CACHE_STALE_IF_ERROR
        self.history = history  # CACHE_KEEP_REQUESTS: requests and hits kept for warming
        self.refresher = refresher  # refresh-ahead and stale-while-revalidate (proxy.chat.refresh)
        self.ids = RequestIds()  # the random part of each cached answer's own completion id
        #: models whose upstream answered 400 to the stream_options we add: they are not asked again
        self.refuse_stream_options: dict[str, None] = {}

    def answer_at_once(self, request: ChatRequest, record: RequestRecord) -> Answer | None:
        """What :meth:`answer` would give when that is a plain exact hit the process holds in memory (the
        in-process LRU, or the tracked copy of Redis), found without awaiting anything; ``None`` when
        :meth:`answer` must run, and then nothing was counted (:meth:`ExactCache.peek`). The HTTP layer
        answers such hits before ASGI (:mod:`proxy.chat.memory_hits`); a stream, a bypass, a client that will
        not read the cache or allows stale answers goes the whole way."""
        directives = request.directives
        if request.stream or directives.bypass or not directives.read or directives.stale_while_revalidate:
            return None
        entry = self.exact.peek(request.key)
        if entry is None:
            return None
        self._note(request, record)
        return self._exact_hit(request, record, entry, stale=False)

    async def answer(self, request: ChatRequest, record: RequestRecord) -> Answer:
        self._note(request, record)
        directives = request.directives
        if directives.bypass:
            record.outcome = "bypass"
            return await self._forward(request, record, None, None, cache="BYPASS")
        claim: Claim | None = None
        probe: SemanticProbe | None = None
        if directives.read:
            stale = False
            if directives.stale_while_revalidate:
                entry, stale = await self.exact.lookup_stale(request.key, directives.stale_while_revalidate)
            else:
                entry = await self.exact.lookup(request.key)
            if entry is not None:
                return self._exact_hit(request, record, entry, stale=stale)
            if self.semantic is not None:
                probe = await self.semantic.lookup(request.body, scope=request.semantic_scope(),
                                                   namespace=request.tenant.namespace, request_id=record.request_id,
                                                   tenant=request.tenant.owner)
                if probe is not None:
                    record.shadow_hit = probe.shadow_hit
                    if probe.entry is not None:
                        return self._hit(request, record, probe.entry, tier="semantic",
                                         key=canonical.semantic_key(self.prefix, probe.point_id or ""),
                                         similarity=probe.similarity)
            # this process first, then other replicas; after the semantic tier's embedding the entry may have
            # been stored since the lookup above, so the one about to lead looks again
            joined = await self.coalescer.join(request, recheck=probe is not None or self.semantic is not None)
            if isinstance(joined, CachedResponse):
                return self._hit(request, record, joined, tier="exact", key=request.key)
            claim = joined  # we ask the upstream: for everyone waiting (a claim), or alone (None)
        record.outcome = "miss"
        return await self._forward(request, record, claim, probe, cache="MISS")

    # -- answering from the cache -----------------------------------------------------------------

    @staticmethod
    def _note(request: ChatRequest, record: RequestRecord) -> None:
        record.model, record.stream, record.api_key_hash = request.model, request.stream, request.api_key_hash

    def _exact_hit(self, request: ChatRequest, record: RequestRecord, entry: CachedResponse, *,
                   stale: bool) -> Answer:
        if self.refresher is not None and self.refresher.watches(stale):
            self.refresher.consider(request, entry, stale=stale, now=time.time(),
                                    refresh=functools.partial(self._refresh, request))
        return self._hit(request, record, entry, tier="exact", key=request.key, stale=stale)

    async def _refresh(self, request: ChatRequest) -> None:
        """Ask ``request`` upstream again and store the answer (as a miss would), off the request path."""
        fresh = dataclasses.replace(request, directives=dataclasses.replace(request.directives, read=False,
                                                                           stale_while_revalidate=None))
        record = RequestRecord(request_id=f"refresh-{self.ids()[:12]}", route="/v1/chat/completions", method="POST",
                               started_at=time.time())  # not client traffic: never handed to the observer
        answer = await self.answer(fresh, record)
        if answer.events is not None:
            try:
                async for _ in answer.events:
                    pass
            finally:
                await answer.events.aclose()
        if answer.status != 200 or record.stream_failed:
            raise RuntimeError(f"the upstream answered {answer.status}")

    def _hit(self, request: ChatRequest, record: RequestRecord, entry: CachedResponse, *, tier: str, key: str,
             similarity: float | None = None, stale: bool = False) -> Answer:
        """A stored answer, under a completion id of its own (the stored one goes in x-cache-original-id); a
        stale one (stale-while-revalidate) says so in ``x-cache: STALE``."""
        exact = tier == "exact"
        record.outcome, record.tier, record.similarity = "exact_hit" if exact else f"{tier}_hit", tier, similarity
        record.usage, record.tokens = entry.usage, entry.tokens
        if self.history is not None and exact:
            self.history.hit(key)
        now = time.time()
        headers = [_STALE if stale else _HIT, _EXACT if exact else (b"x-cache-tier", tier.encode()),
                   (b"age", str(entry.age(now)).encode()), (b"x-cache-key", key.encode())]
        if similarity is not None:
            headers.append((b"x-cache-similarity", f"{similarity:.4f}".encode()))
        template = entry.identity()
        if template is not None and template.original_header is not None:
            headers.append((b"x-cache-original-id", template.original_header))
        if not request.stream:
            body = template.fill(self.ids()[:24], int(now)) if template is not None else entry.body
            headers.append(_JSON)
            return Answer(200, headers, "STALE" if stale else "HIT", key, body=body, media_type=None)
        completion = entry.completion
        if template is None:
            _original_id(headers, completion.get("id"))
        fresh = (template.id_prefix if template is not None else identifiers.DEFAULT_PREFIX) + self.ids()[:24]
        frames = replay.replay(completion, include_usage=request.wants_usage, completion_id=fresh, created=int(now))
        return Answer(200, headers, "STALE" if stale else "HIT", key, events=_iterate(frames), media_type=SSE)

    # -- asking the upstream ----------------------------------------------------------------------

    async def _forward(self, request: ChatRequest, record: RequestRecord, claim: Claim | None,
                       probe: SemanticProbe | None, *, cache: str) -> Answer:
        headers = hdr.to_upstream(_decoded(request.headers), self.upstream_api_key)
        content, hide_usage = request.upstream_body(
            ask_usage=self.ask_usage and request.model not in self.refuse_stream_options)

        async def store(entry: CachedResponse) -> bool:
            stored = await self.exact.store(request.key, entry)
            if self.history is not None:
                self.history.stored(asked_of(request, entry.stored_at + entry.ttl))
            if self.semantic is not None and probe is not None:
                self.semantic.remember(probe, entry, namespace=request.tenant.namespace)
            return stored

        exchange = Exchange(request, record, claim, ttl=self.ttl, store=store, spawn=self.spawn,
                            started=time.perf_counter())
        try:
            response = await self.upstream.send("POST", PATH, headers=headers, content=content, params=request.query)
            if hide_usage and response.status_code == 400:
                response, hide_usage = await self._without_stream_options(request, response, headers)
        except UpstreamError:
            exchange.abandon()
            if (stale := await self._stale(request, record)) is not None:
                return stale
            raise
        except BaseException:
            exchange.abandon()
            raise
        if response.status_code >= 500 and (stale := await self._stale(request, record)) is not None:
            await response.aclose()
            exchange.abandon()
            return stale
        out_headers = _encoded([*hdr.to_client(response.headers, cacheable=True), ("x-cache", cache)])
        if request.stream and response.status_code == 200 and _is_event_stream(response.headers):
            return Answer(200, out_headers, cache, request.key, events=exchange.relay(response, hide_usage=hide_usage),
                          media_type=SSE)
        raw, completion = await exchange.read_plain(response)
        if request.stream and policy.is_complete(completion):
            # the upstream answered a stream request with a plain body: give the client the stream it asked for
            frames = replay.replay(completion or {}, include_usage=request.wants_usage)
            return Answer(200, out_headers, cache, request.key, events=_iterate(frames), media_type=SSE)
        return Answer(response.status_code, out_headers, cache, request.key, body=raw, media_type=None)


    async def _stale(self, request: ChatRequest, record: RequestRecord) -> Answer | None:
        """stale-if-error (RFC 5861): the upstream failed, so an entry that expired at most
        CACHE_STALE_IF_ERROR seconds ago (or what the client's stale-if-error/max-stale allows) answers,
        with ``x-cache: STALE`` and its age."""
        window = request.directives.stale_window(self.stale_if_error)
        if window <= 0:
            return None
        entry, _ = await self.exact.lookup_stale(request.key, window)
        if entry is None:
            return None
        answer = self._hit(request, record, entry, tier="exact", key=request.key, stale=True)
        record.outcome = "stale"  # counted apart from hits: answered because the upstream failed
        return answer

    async def _without_stream_options(self, request: ChatRequest, refused: UpstreamResponse,
                                      headers: list[tuple[str, str]]) -> tuple[UpstreamResponse, bool]:
        """A strict upstream answered 400 to the ``stream_options`` cachegate added: ask once more with the
        client's own body, and do not add it for this model again (its streams are then stored without
        usage). A 400 about anything else is the client's answer, passed on as it is."""
        raw = await refused.read()
        if b"stream_options" not in raw and b"include_usage" not in raw:
            return _replayed(refused, raw), True
        self.refuse_stream_options[request.model] = None
        if len(self.refuse_stream_options) > REFUSERS:
            del self.refuse_stream_options[next(iter(self.refuse_stream_options))]
        return await self.upstream.send("POST", PATH, headers=headers, content=request.raw,
                                        params=request.query), False


def _replayed(response: UpstreamResponse, raw: bytes) -> UpstreamResponse:
    """``response`` again, its body (read already) sent from memory."""
    return UpstreamResponse(response.status_code, response.headers, _iterate([raw]))


def _original_id(headers: list[tuple[bytes, bytes]], original: object) -> None:
    value = identifiers.header_value(original)
    if value is not None:
        headers.append((b"x-cache-original-id", value.encode()))


def _decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _encoded(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _is_event_stream(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == "content-type" and value.startswith(SSE) for name, value in headers)


async def _iterate(frames: Iterable[bytes]) -> AsyncGenerator[bytes, None]:
    for frame in frames:
        yield frame

