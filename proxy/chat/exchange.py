"""One call to the upstream for one chat request: send, relay or read, and store what finished intact.

:class:`Exchange` owns everything that must happen once per upstream call, whatever happens to it (an
error, a cut-off stream, a client that leaves before the first byte): :meth:`Exchange.finish` is the one
close path. It hands a finished answer to those waiting on the same key (its
:class:`~proxy.chat.coalesce.Claim`), writes the request record's upstream figures, and stores the entry off
the request path; without a finished answer it only gives the claim up, so the others go ahead at once.
A streamed answer is an :class:`EventRelay`, whose ``aclose`` runs that close path even if it was never
iterated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any

import orjson

from proxy.cache.entry import CachedResponse
from proxy.chat.coalesce import Claim
from proxy.contracts import RequestRecord, UpstreamResponse
from proxy.core import policy, replay, sse
from proxy.core.request import ChatRequest, TtlRule
from proxy.errors import UpstreamError

#: Stores a finished answer (exact tier, then the semantic tier), in the background; True once it is written.
Store = Callable[[CachedResponse], Coroutine[Any, Any, bool]]
Spawn = Callable[[Coroutine[Any, Any, Any]], Any]

logger = logging.getLogger("cachegate.chat")


class Exchange:
    def __init__(self, request: ChatRequest, record: RequestRecord, claim: Claim | None, *,
                 ttl: TtlRule, store: Store, spawn: Spawn, started: float) -> None:
        self.request = request
        self.record = record
        self.claim = claim
        self.ttl = ttl
        self.store = store
        self.spawn = spawn
        self.started = started
        self.finished = False

    def finish(self, completion: dict[str, Any] | None, *, raw: bytes | None = None,
               usage: Any = None) -> CachedResponse | None:
        """The one close path; only the first call counts. Returns the entry when the answer was storable."""
        if self.finished:
            return None
        self.finished = True
        record = self.record
        record.upstream_seconds = time.perf_counter() - self.started
        if usage is not None:
            record.usage = usage
        entry = None
        if completion is not None:
            # Kept beside the body, so that a hit needs to parse nothing: the upstream's id, the usage, and
            # where the id and created are in the body (each hit gets an id of its own).
            meta: dict[str, Any] = {"usage": completion.get("usage")}
            stored_id = completion.get("id")
            if isinstance(stored_id, str) and len(stored_id) <= 256:
                meta["id"] = stored_id
            entry = CachedResponse.from_completion(completion, model=self.request.model, stored_at=time.time(),
                                                   ttl=self.request.ttl(self.ttl), **meta)
            if raw is not None:
                entry.body = raw  # plain answers are stored byte for byte
            spans = replay.identity_spans(entry.body)
            entry.meta["spans"] = list(spans) if spans is not None else []
        claim = self.claim
        if entry is not None and claim is not None:
            claim.resolve(entry)  # followers are answered now; the key stays theirs until the entry is written
        if entry is not None and self.request.directives.write:
            self.spawn(self._store(entry))
        elif claim is not None:
            claim.release(stored=False)
        return entry

    def abandon(self) -> None:
        """The upstream was never reached (or the call failed before an answer): give the claim up."""
        if not self.finished:
            self.finished = True
            if self.claim is not None:
                self.claim.release(stored=False)

    async def _store(self, entry: CachedResponse) -> None:
        stored = False
        try:
            stored = await self.store(entry)
        finally:
            if self.claim is not None:
                self.claim.release(stored=stored)

    async def read_plain(self, response: UpstreamResponse) -> tuple[bytes, dict[str, Any] | None]:
        """Read a plain answer to the end; returns its bytes and the completion if it is one worth storing."""
        raw = b""
        completion = None
        try:
            raw = await response.read()
            parsed = _json_or_none(raw) if response.status_code == 200 else None
            completion = parsed if isinstance(parsed, dict) else None
        finally:
            self.finish(completion if policy.is_complete(completion) else None, raw=raw,
                        usage=completion.get("usage") if completion is not None else None)
        return raw, completion

    def relay(self, response: UpstreamResponse, *, hide_usage: bool) -> EventRelay:
        return EventRelay(self, response, hide_usage=hide_usage)


class EventRelay:
    """The upstream's events, passed on first and observed after: the cache side folds a copy into the
    completion it may store, and whatever it meets (a field it cannot fold, a chunk that is not JSON) only
    costs the cache entry, never the client's stream.

    The bytes go on as they came (comments, ``event:``/``id:``/``retry:`` fields, any line ending), except
    the usage event cachegate asked for on the client's behalf (``hide_usage``), which is left out whole.
    ``aclose`` always finishes the exchange, even when the relay was never iterated.
    """

    def __init__(self, exchange: Exchange, response: UpstreamResponse, *, hide_usage: bool) -> None:
        self.exchange = exchange
        self.response = response
        self.body = response.body
        self.hide_usage = hide_usage
        self._events: AsyncGenerator[bytes, None] = self._relay()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        exchange, record = self.exchange, self.exchange.record
        relay = sse.EventRelay(drop=sse.is_usage_only_event if self.hide_usage else None)
        assembler = sse.StreamAssembler()
        completion = None
        delivered = False  # the client got the whole stream (whether or not it may be stored)
        try:
            async for chunk in self.body:
                if record.ttft is None:
                    record.ttft = time.perf_counter() - exchange.started
                out, events = relay.feed(chunk)
                if out:
                    yield out
                for event in events:
                    assembler.add_event(event)
            rest = relay.close()
            if rest:
                yield rest
            delivered = not relay.pending and assembler.done and not assembler.errored
            completion, reason = assembler.outcome() if delivered else (None, "the stream was cut off or failed")
            if completion is None:
                logger.info("streamed answer not stored: %s", reason)
        except UpstreamError as exc:
            yield sse.encode_event(exc.to_dict())
        finally:
            record.stream_failed = not delivered
            exchange.finish(completion, usage=completion.get("usage") if completion is not None else None)

    async def aclose(self) -> None:
        try:
            await self._events.aclose()
        finally:
            try:
                await self.body.aclose()
                await self.response.aclose()  # released even if the body was never read (a generator
                # that never started runs no finally of its own)
            finally:
                if not self.exchange.finished:  # never iterated: the client left before the first byte
                    self.exchange.record.stream_failed = True
                    self.exchange.finish(None)


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
